"""Writers from irflow IR to other formats (`irflow.exporters.onnx.export_onnx`)."""
