"""ncnn: export from ONNX, int8 convolutions, codebook weights, reading and writing ncnn files."""
