"""The compiled and reference kernels of the Keras LSTM recurrence: the C++ CPU layer
(`cpu_lstm`), the Triton CUDA kernels (`triton_lstm`) and the torch reference loop
(`recurrence`), which is also the fallback where neither can run. `dispatch` decides which one
runs a layer; `activations` holds the one table of activation codes the compiled kernels take,
`gradients` the weight gradients the loop and Triton share.

The layer below the models: it imports only lstmcast.errors, choices, checks and files, and
within kernels/ only downwards (activations and gradients <- cpu_lstm, triton_lstm and
recurrence <- dispatch), so that no module imports one that imports it back."""
