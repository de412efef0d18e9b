"""Worker for the DDP test in test_training.py, launched as ``torchrun --nproc_per_node=2 ddp_worker.py OUT``.

Each rank trains a few steps of toy-mlp over gloo and saves its initial and final weights to
``OUT/rank{r}.pt``, so the test can check that DDP kept the replicas identical while they learned.
"""

import sys

import torch

from ddim_book.training import Trainer, distributed, get_config, load_checkpoint


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    config = get_config(
        "toy-mlp", total_steps=6, log_every=3, ckpt_every=3, batch_size=64, dataset_size=512, device="cpu"
    )
    trainer = Trainer(config, f"{out_dir}/run", progress=False)
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train(max_steps=3)
    # a second chunk, resumed from the checkpoint rank 0 wrote, as a time-boxed job would do
    distributed.barrier(trainer.dist)
    ckpt_step = load_checkpoint(f"{out_dir}/run/last.pt")["step"]
    trainer = Trainer(config, f"{out_dir}/run", progress=False)
    trainer.train()
    result = {
        "rank": trainer.dist.rank,
        "world_size": trainer.dist.world_size,
        "ckpt_step_after_first_chunk": ckpt_step,
        "initial": initial,
        "final": trainer.model.state_dict(),
        "ema": trainer.ema.state_dict()["weights"],
    }
    torch.save(result, f"{out_dir}/rank{trainer.dist.rank}.pt")
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
