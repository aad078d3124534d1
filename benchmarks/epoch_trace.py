"""Validation and test MSE after every epoch of one benchmark run, to see where early stopping
lands against where the test score is best (docs/accuracy.md, "What was tried").

Same protocol and training as `lstmcast benchmark` (benchmark.TRAINING / ARCHITECTURE), plus:
- `--lr-decay G`: after epoch 3, multiply the learning rate by G each epoch (SegRNN's "type3";
  Adam's moments are kept);
- `--shrink`: at the end, fit `last + w * (forecast - last)` on the validation windows by least
  squares (w in [0, 1]) and score it on test: a forecast combination with repeat_last.

    python benchmarks/epoch_trace.py --data ../shared/data/ETTh1.csv --horizon 336
    python benchmarks/epoch_trace.py --data ../shared/data/ETTh1.csv --horizon 336 \\
        --lr-decay 0.8 --patience 10
    python benchmarks/epoch_trace.py --data ../shared/data/exchange_rate.csv --protocol ratio \\
        --shrink
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from lstmcast import models
from lstmcast.config import make_config
from lstmcast.data import split_windows
from lstmcast.engine import training
from lstmcast.engine.batching import gather_targets, predict_windows
from lstmcast.workflows.benchmark import ARCHITECTURE, TRAINING, load_protocol, score

HOLD_EPOCHS = 3  # SegRNN's type3 schedule keeps the starting lr for the first 3 epochs


def forecasts(
    model: torch.nn.Module, series: torch.Tensor, starts: np.ndarray, lookback: int, horizon: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(forecast, actual, last input value) for each window, float64, (N, H, V)."""
    index = torch.as_tensor(starts, dtype=torch.long, device=series.device)
    predicted = predict_windows(model, series, starts, lookback).astype(np.float64)
    actual = gather_targets(series, index, lookback, horizon, series.shape[1]).cpu().double()
    last = series[index + lookback - 1].cpu().double()[:, None, :]
    return predicted, actual.numpy(), last.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--protocol", default="ett-hourly")
    parser.add_argument("--model", default="seglstm")
    parser.add_argument("--lookback", type=int, default=96)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--lr-decay", type=float, default=1.0)
    parser.add_argument("--options", default="{}", help='training overrides, JSON: {"loss": "mse"}')
    parser.add_argument("--model-options", default="{}", help='JSON: {"segment": 12}')
    parser.add_argument("--patience", type=int, default=None)
    parser.add_argument("--shrink", action="store_true")
    args = parser.parse_args()

    data = load_protocol(args.data, args.protocol)
    lookback, horizon = args.lookback, args.horizon
    run_options = {**TRAINING.get(args.model, {}), **json.loads(args.options)}
    if args.patience is not None:
        run_options["patience"] = args.patience
    model_options = {**ARCHITECTURE.get(args.model, {}), **json.loads(args.model_options)}
    config = make_config(
        {
            "model": args.model,
            "lookback": lookback,
            "horizon": horizon,
            "seed": args.seed,
            "device": args.device,
            "model_options": model_options,
            **run_options,
        }
    )
    device = training.resolve_device(config.device)
    n_features = data.scaled.shape[1]
    model = models.build_for_run(config, n_features, n_features).to(device)
    series = torch.from_numpy(data.scaled).to(device)
    starts = {
        part: split_windows(data.split, part, lookback, horizon)
        for part in ("train", "val", "test")
    }

    print(
        f"{args.data} {args.protocol} {args.model} L={lookback} H={horizon} seed {args.seed} "
        f"lr decay {args.lr_decay} {json.dumps(run_options)} {json.dumps(model_options)}"
    )
    print("| epoch | train loss | val MSE | test MSE | next lr |\n|---|---|---|---|---|")

    def on_epoch(epoch: training.Epoch) -> None:
        if not epoch.kept:
            return
        # the loop's lr seam: the optimizer that trains the next epoch
        if args.lr_decay != 1.0:
            for group in epoch.optimizer.param_groups:
                group["lr"] = group["lr"] * (args.lr_decay if epoch.number >= HOLD_EPOCHS else 1.0)
        val = score(model, series, starts["val"], lookback, horizon)["mse"]
        test = score(model, series, starts["test"], lookback, horizon)["mse"]
        model.train()
        lr = epoch.optimizer.param_groups[0]["lr"]
        print(
            f"| {epoch.number} | {epoch.train_loss:.4f} | {val:.4f} | {test:.4f} | {float(lr):.2e} |",
            flush=True,
        )

    started = time.perf_counter()
    result = training.train(
        model,
        series,
        starts["train"],
        starts["val"],
        config,
        n_targets=n_features,
        callbacks=[on_epoch],
    )
    val = score(model, series, starts["val"], lookback, horizon)
    test = score(model, series, starts["test"], lookback, horizon)
    print(
        f"kept epoch {result.best_epoch} of {len(result.history)}: val MSE {val['mse']:.4f}, "
        f"test MSE {test['mse']:.4f} / MAE {test['mae']:.4f} "
        f"({time.perf_counter() - started:.0f} s on {device})"
    )
    if args.shrink:
        predicted, actual, last = forecasts(model, series, starts["val"], lookback, horizon)
        move, wanted = predicted - last, actual - last
        weight = float(np.clip((move * wanted).sum() / max((move * move).sum(), 1e-12), 0, 1))
        predicted, actual, last = forecasts(model, series, starts["test"], lookback, horizon)
        shrunk = float(np.mean((last + weight * (predicted - last) - actual) ** 2))
        print(
            f"shrink toward repeat_last: w = {weight:.3f} (fitted on val); test MSE {shrunk:.4f} "
            f"(repeat_last {float(np.mean((last - actual) ** 2)):.4f})"
        )


if __name__ == "__main__":
    main()
