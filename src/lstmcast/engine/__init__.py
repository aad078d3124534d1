"""The training engine: batches gathered by index on the device (`batching`), one
optimisation step eager or as a CUDA graph (`steps`), and the one training loop (`training`)."""
