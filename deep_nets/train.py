"""Train a deep net with the paper's step-size schedules, measuring feature sparsity as it trains.

    python deep_nets/train.py --dataset=cifar10 --lr_init=0.75 --lr_schedule=piecewise_05epochs \
        --warmup_exp=1.05 --model=resnet18_plain --model_width=64 --epochs=100 --batch_size=256 \
        --momentum=0.0 --l2_reg=0.0 --no_data_augm --eval_iter_freq=200 --exp_name=no_explicit_reg
    python deep_nets/train.py --help        # every flag, and a one-minute smoke run for a CPU

Writes <out_dir>/<exp_name>/<run name>/ (deep_nets/runs.py names it from every flag that changes what the run
computes): config.json, metrics.jsonl (one line per evaluation) and checkpoint.pt (atomically, at each evaluation
and on Ctrl-C/SIGTERM/SIGUSR2).  The directory appears, whole, once the first evaluation and checkpoint exist,
so a run that fails before leaves nothing behind.  One process at a time holds a run (a lock file beside it).
--resume continues a run, dropping a metrics line torn by a crash; on CPU the resumed run's metrics equal an
uninterrupted run's.  Exit status 0 done, 1 diverged; 2, with one line naming the flag or file, for bad
arguments, missing or malformed data, sizes that cannot fit in memory, a run held by another process, a corrupt
checkpoint or an unwritable place; 3 for an unexpected error (its traceback, then one line); 128+signal number
after an interrupt (checkpoint saved).
Under `torchrun --nproc_per_node=N` it trains with DistributedDataParallel (deep_nets/distributed.py).
The first line comes before torch is imported (seconds): what is loaded and built, and where it goes.
"""
from __future__ import annotations

import os
import signal
import sys
import traceback

from largestep.config import ConfigError
from largestep.results import Terminated, sigterm_as_interrupt

from deep_nets.flags import build_parser, check_args
from deep_nets.runs import run_dir


class Refused(Exception):
    """What train.py refuses to start or continue, for its one-line message (exit status 2)."""


def start_line(a) -> str:
    epochs = f"{a.epochs} epoch{'s' if a.epochs != 1 else ''}"
    return (f"train.py: {a.model} of width {a.model_width} on {a.dataset}, {epochs} of batch {a.batch_size}, "
            f"into {run_dir(vars(a))}; loading torch and the data")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(argv)
    try:
        with sigterm_as_interrupt():
            check_args(args)
            if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
                print(start_line(args), flush=True)
            from deep_nets.data import DataError
            from deep_nets.loop import train
            from deep_nets.run_dir import RunError

            try:
                return train(args, argv)
            except (DataError, RunError) as err:
                raise Refused(str(err)) from None
    except (ConfigError, Refused) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a fault of this program or of torch: exit 1 would read as "diverged"
        traceback.print_exc()
        print(f"error: train.py stopped on an unexpected {type(err).__name__} (traceback above): {err}".splitlines()[0],
              file=sys.stderr)
        return 3
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM before training started: nothing to save yet
        print("interrupted before training started; nothing saved", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
