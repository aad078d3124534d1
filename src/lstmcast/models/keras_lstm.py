"""One Keras-equivalent LSTM layer (optionally bidirectional), batch first.

Keras computes, per time step, with gates in the order i, f, c (candidate), o:

    i, f, o = sigmoid(W x + U h + b)      # recurrent_activation
    g       = activation(W x + U h + b)   # candidate
    c       = f * c + i * g
    h       = o * activation(c)

Torch's `nn.LSTM` uses the same gate order but two bias vectors (`bias_ih`, `bias_hh`) and a
hard-wired tanh. We keep one `nn.LSTM` as the owner of the weights for both code paths and freeze
its `bias_hh_*` at zero, so the trainable parameter count equals Keras's
`4 * (units * (input_dim + units) + units)` per direction. On the CPU the whole layer, any
activation, runs as lstmcast's C++ extension (lstmcast.kernels.cpu_lstm; faster than oneDNN for
these sizes). Elsewhere "tanh" runs the fused vendor kernel (cuDNN) and any other activation the
same equations explicitly on the same tensors (a fused Triton kernel on CUDA, a torch loop with
a closed-form backward otherwise, which is also the CPU's fallback when the extension cannot be
built); lstmcast.kernels.dispatch decides which. State-dict keys are torch's:
`lstm.weight_ih_l0` (4U, I), `lstm.weight_hh_l0` (4U, U), `lstm.bias_ih_l0` (4U,),
`lstm.bias_hh_l0` (4U,, frozen zero), plus `*_reverse` when bidirectional.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmcast.errors import ConfigError
from lstmcast.kernels import cpu_lstm, dispatch
from lstmcast.kernels.activations import ACTIVATIONS
from lstmcast.kernels.dispatch import Backend

# ACTIVATIONS (Keras names -> torch functions) lives beside the kernels' tables of the same
# names; the models import it from here.
__all__ = ["ACTIVATIONS", "KerasLSTM"]


class KerasLSTM(nn.Module):
    """Keras `LSTM(units, activation)` (or `Bidirectional(...)`, merge_mode="concat").

    Input (B, L, input_size). Output (B, L, units * D) with `return_sequences`, else the final
    hidden state (B, units * D); D = 2 directions when bidirectional, forward first. `fused=False`
    forces the explicit loop instead of cuDNN / oneDNN for tanh (to test one path against the
    other); on the CPU the C++ layer takes precedence over both unless it is turned off.
    """

    def __init__(
        self,
        input_size: int,
        units: int,
        activation: str = "tanh",
        bidirectional: bool = False,
        return_sequences: bool = False,
        fused: bool = True,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"The 'activation' parameter must be one of {', '.join(sorted(ACTIVATIONS))}. "
                f"Got {activation!r} instead."
            )
        self.units = units
        self.activation = activation
        self.num_directions = 2 if bidirectional else 1
        self.return_sequences = return_sequences
        self.fused = fused and activation == "tanh"
        self.lstm = nn.LSTM(input_size, units, batch_first=True, bidirectional=bidirectional)
        for name, param in self.lstm.named_parameters():
            if name.startswith("bias_hh"):
                param.requires_grad_(False)  # Keras has one bias per gate; this one stays zero
        self.reset_parameters_keras()

    def extra_repr(self) -> str:
        return (
            f"activation={self.activation!r}, return_sequences={self.return_sequences}, "
            f"fused={self.fused}"
        )

    @property
    def output_size(self) -> int:
        return self.units * self.num_directions

    @torch.no_grad()
    def reset_parameters_keras(self) -> None:
        """Keras defaults: glorot_uniform kernel, orthogonal recurrent kernel, zero bias with
        the forget-gate slice at 1 (unit_forget_bias). Draws from torch's global RNG."""
        U = self.units
        for w_ih, w_hh, b_ih, b_hh in self.lstm.all_weights:
            # Keras's kernel is (I, 4U) = w_ih.T; glorot's limit sqrt(6 / (I + 4U)) is symmetric.
            nn.init.xavier_uniform_(w_ih)
            # Keras's recurrent kernel (U, 4U) has orthonormal rows, so w_hh = its transpose
            # (4U, U) has orthonormal columns: what orthogonal_ gives for a tall matrix.
            nn.init.orthogonal_(w_hh)
            b_ih.zero_()
            b_ih[U : 2 * U] = 1.0
            b_hh.zero_()

    def forward(self, x: Tensor) -> Tensor:
        chosen = dispatch.backend(self.activation, x.device, x.dtype, self.units, self.fused)
        return self.forward_with(chosen, x)

    def forward_with(self, backend: Backend, x: Tensor) -> Tensor:
        """The layer on `backend` (for comparisons and tests; `forward` asks dispatch).
        `nn_lstm` runs tanh only; `loop` and `triton` go through `keras_recurrence`."""
        if backend is Backend.cpp:
            return self._forward_compiled(x)
        if backend is Backend.nn_lstm:
            return self._forward_fused(x)
        return self._forward_explicit(x)  # the recurrence on Triton or the torch loop

    def _forward_compiled(self, x: Tensor) -> Tensor:
        # B batch, L time steps, U units, D directions
        weights = [w for direction in self.lstm.all_weights for w in direction]
        hs = cpu_lstm.layer(x, self.activation, weights, all_steps=self.return_sequences)
        # (B, L, D, U) -> (B, L, D*U) or (B, D, U) -> (B, D*U): forward direction first; each
        # direction's last step (time L-1 forward, 0 backward)
        return hs.flatten(-2)

    def _forward_fused(self, x: Tensor) -> Tensor:
        out, (h_n, _) = self.lstm(x)  # out (B, L, D*U), h_n (D, B, U)
        if self.return_sequences:
            return out
        return h_n.transpose(0, 1).reshape(x.shape[0], -1)  # (B, D*U), forward first

    def _forward_explicit(self, x: Tensor) -> Tensor:
        # B batch, L time steps, I input size, U units, D directions
        B, L, _ = x.shape
        U, D = self.units, self.num_directions
        act = ACTIVATIONS[self.activation]
        w_ih, w_hh, b_ih, b_hh = (torch.stack(w) for w in zip(*self.lstm.all_weights, strict=True))
        # w_ih (D, 4U, I), w_hh (D, 4U, U), biases (D, 4U)

        # Time-major input, the backward direction reading it reversed: (D, L, B, I).
        xt = x.transpose(0, 1)
        xs = xt.unsqueeze(0) if D == 1 else torch.stack((xt, xt.flip(0)))
        # Input projection for every step in one batched matmul: (D, L*B, 4U) -> (D, L, B, 4U)
        # One F.linear per direction rather than one baddbmm: its weight gradient (K = L*B)
        # gets cuBLAS's split-K kernels that way (see kernels.gradients.weight_grad).
        bias = b_ih + b_hh  # (D, 4U)
        xp = torch.stack([F.linear(xs[d], w_ih[d], bias[d]) for d in range(D)])  # (D, L, B, 4U)
        w_hh_t = w_hh.transpose(1, 2)  # (D, U, 4U)

        hs = dispatch.keras_recurrence(xp, w_hh_t, self.activation, act)  # (D, L, B, U)
        if not self.return_sequences:
            return hs[:, -1].transpose(0, 1).reshape(B, D * U)  # final states, forward first
        seq = hs.transpose(1, 2)  # (D, B, L, U)
        if D == 2:
            seq = torch.stack((seq[0], seq[1].flip(1)))  # backward outputs back in time order
        return seq.permute(1, 2, 0, 3).reshape(B, L, D * U)  # (B, L, D*U), forward first
