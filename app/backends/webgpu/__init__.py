"""WebGPU backend: WGSL kernels (shaders/) driven from Python, on wgpu-py or navigator.gpu."""
from .device import BrowserDevice, Device, DeviceError, WgpuDevice, default_device
from .runner import WebGPURunner

__all__ = ["BrowserDevice", "Device", "DeviceError", "WebGPURunner", "WgpuDevice", "default_device"]
