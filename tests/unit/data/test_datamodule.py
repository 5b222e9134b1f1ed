import json

import pytest
import torch

from pareto_lightning import HFPrompts, ListPrompts, PreferencePromptDataModule
from pareto_lightning.preferences import PAPER_EVAL_WEIGHTS

PROMPTS = ListPrompts([f"prompt number {i}" for i in range(20)])


def _dm(**kw):
    kw.setdefault("num_eval_prompts", 2)
    dm = PreferencePromptDataModule(kw.pop("source", PROMPTS), **kw)
    dm.setup("fit")
    return dm


def test_preference_is_held_for_a_task_and_redrawn_between_tasks():
    dm = _dm(batch_size=3, steps_per_preference=4, seed=5)
    batches = [dm.next_train_batch() for _ in range(4 * 12)]
    tasks = [batches[i : i + 4] for i in range(0, len(batches), 4)]
    firsts = []
    for task in tasks:
        w = task[0]["weights"]
        assert w.shape == (3, 2) and torch.equal(w, w[:1].expand(3, 2))  # one w per batch
        assert all(torch.equal(b["weights"], w) for b in task)  # held for the whole task
        firsts.append(tuple(w[0].tolist()))
    changes = sum(a != b for a, b in zip(firsts, firsts[1:], strict=False))
    assert changes >= 7  # 11 grid points, uniform: consecutive tasks coincide with probability 1/11
    assert set(firsts) <= {(round(1 - i / 10, 6), round(i / 10, 6)) for i in range(11)} or all(
        abs(a + b - 1) < 1e-6 for a, b in firsts
    )


def test_per_prompt_preferences_and_prompt_passes():
    dm = _dm(batch_size=6, per_prompt_preferences=True, seed=1)
    seen = []
    for _ in range(3):  # 18 training prompts -> exactly one pass
        b = dm.next_train_batch()
        seen += b["prompts"]
        assert len({tuple(x) for x in b["weights"].tolist()}) > 1
    assert sorted(seen) == sorted(dm.train_prompts)


def test_state_dict_resumes_the_exact_stream():
    dm = _dm(batch_size=4, steps_per_preference=3, seed=2)
    for _ in range(5):  # stop in the middle of a task
        dm.next_train_batch()
    state = dm.state_dict()
    expected = [dm.next_train_batch() for _ in range(10)]
    fresh = _dm(batch_size=4, steps_per_preference=3, seed=99)
    fresh.load_state_dict(state)
    got = [fresh.next_train_batch() for _ in range(10)]
    for a, b in zip(expected, got, strict=True):
        assert a["prompts"] == b["prompts"] and torch.equal(a["weights"], b["weights"])


def test_ranks_get_disjoint_prompts_and_the_same_preference():
    ranks = []
    for rank in range(2):
        dm = _dm(batch_size=3, steps_per_preference=2, seed=3)
        dm._world = lambda rank=rank: (rank, 2)
        ranks.append([dm.next_train_batch() for _ in range(3)])
    for a, b in zip(*ranks, strict=True):
        assert not set(a["prompts"]) & set(b["prompts"])
        assert torch.equal(a["weights"], b["weights"])


def test_eval_sweep_covers_every_weight_prompt_pair_once_across_ranks():
    dm = _dm(batch_size=2, eval_batch_size=5)
    assert torch.equal(dm.eval_weights, PAPER_EVAL_WEIGHTS) and int(dm.eval_seen.sum()) == 11
    pairs = []
    for rank in range(2):
        dm._world = lambda rank=rank: (rank, 2)
        for b in dm.val_dataloader():
            assert torch.allclose(b["weights"], dm.eval_weights[b["weight_index"]].float())
            assert b["prompts"] == [dm.eval_prompts[i] for i in b["prompt_index"]]
            pairs += list(zip(b["weight_index"].tolist(), b["prompt_index"].tolist(), strict=True))
    assert sorted(pairs) == [(w, p) for w in range(28) for p in range(2)]


def test_every_rank_runs_as_many_eval_batches_even_when_the_sweep_does_not_divide():
    # 28 weights x 1 prompt on 5 ranks: shares of 6, 6, 6, 5, 5 pairs; batches of 3 give 2 batches on every rank
    # (a rank with one batch fewer would leave the others waiting in a sharded policy's all-gather).
    dm = _dm(num_eval_prompts=1, eval_batch_size=3)
    sizes, pairs = [], []
    for rank in range(5):
        dm._world = lambda rank=rank: (rank, 5)
        batches = list(dm.val_dataloader())
        sizes.append([len(b["prompts"]) for b in batches])
        pairs += [
            (int(w), int(p))
            for b in batches
            for w, p in zip(b["weight_index"], b["prompt_index"], strict=True)
        ]
    assert sizes == [[3, 3]] * 3 + [[3, 2]] * 2
    assert sorted(pairs) == [(w, 0) for w in range(28)]
    # 28 pairs with batches of 5 on 5 ranks: 2 batches each (6 pairs -> 5 + 1, 5 pairs -> 3 + 2).
    dm = _dm(num_eval_prompts=1, eval_batch_size=5)
    counts = []
    for rank in range(5):
        dm._world = lambda rank=rank: (rank, 5)
        counts.append([len(b["prompts"]) for b in dm.val_dataloader()])
    assert counts == [[5, 1]] * 3 + [[3, 2]] * 2
    dm._world = lambda: (0, 30)
    with pytest.raises(ValueError, match="num_eval_prompts"):
        list(dm.val_dataloader())


def test_eval_weights_options():
    lattice = _dm(num_objectives=3, eval_weights="lattice", eval_lattice_divisions=4, grid_divisions=2)
    assert lattice.eval_weights.shape == (15, 3)
    assert int(lattice.eval_seen.sum()) == 6  # the divisions-2 grid inside the divisions-4 lattice
    explicit = _dm(eval_weights=[[0.33, 0.67], [0.5, 0.5]])
    assert explicit.eval_seen.tolist() == [False, True]
    continuous = _dm(grid_divisions=None)
    assert not continuous.eval_seen.any()


def test_held_out_eval_prompts_and_truncation():
    dm = _dm(max_prompt_chars=8)
    assert dm.eval_prompts == ["prompt n", "prompt n"] and len(dm.train_prompts) == 18
    assert all(len(p) <= 8 for p in dm.train_prompts)


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_hf_prompts_from_local_files(tmp_path, ext):
    import datasets

    rows = [{"prompt": "first", "other": 1}, {"prompt": "second", "other": 2}]
    path = tmp_path / f"p.{ext}"
    ds = datasets.Dataset.from_list(rows)
    {"jsonl": ds.to_json, "csv": ds.to_csv, "parquet": ds.to_parquet}[ext](str(path))
    assert HFPrompts(data_files=str(path)).load() == ["first", "second"]
    assert HFPrompts(data_files=str(path), limit=1).load() == ["first"]


def test_hf_prompts_errors(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"text": "a"}) + "\n")
    with pytest.raises(ValueError, match=r"prompt_column.*'prompt'.*columns: \['text'\]"):
        HFPrompts(data_files=str(path)).load()
    blank = tmp_path / "b.jsonl"
    blank.write_text(json.dumps({"prompt": "  "}) + "\n")
    with pytest.raises(ValueError, match="empty prompts"):
        HFPrompts(data_files=str(blank)).load()
    with pytest.raises(
        OSError, match=r"Hub must be reachable.*data.init_args.eval_prompts|data.init_args.eval_prompts.*Hub"
    ):
        HFPrompts(str(tmp_path / "no_such_dataset"), key="data.init_args.eval_prompts").load()
    with pytest.raises(ValueError, match="data_files"):
        HFPrompts(data_files=str(tmp_path / "p.txt")).load()
    with pytest.raises(ValueError, match="path"):
        HFPrompts()
    with pytest.raises(ValueError, match="limit"):
        HFPrompts(data_files=str(path), limit=0)
    with pytest.raises(ValueError, match="ListPrompts"):
        ListPrompts([])


def test_hf_prompts_check_finds_missing_sources_without_loading(tmp_path):
    present = tmp_path / "p.jsonl"
    present.write_text(json.dumps({"prompt": "a"}) + "\n")
    HFPrompts(data_files=str(present)).check()
    HFPrompts(str(tmp_path)).check()  # an existing folder
    with pytest.raises(
        OSError, match=r"\(`data.init_args.train_prompts`\): the Hugging Face Hub.*gone.jsonl"
    ):
        HFPrompts(data_files=[str(present), str(tmp_path / "gone.jsonl")]).check()
    with pytest.raises(OSError, match=r"no_such_dataset.*\(`data.init_args.eval_prompts`\)"):
        HFPrompts(str(tmp_path / "no_such_dataset"), key="data.init_args.eval_prompts").check()
    # As `load` resolves them: data files inside `path`, and patterns.
    (tmp_path / "ds" / "data").mkdir(parents=True)
    (tmp_path / "ds" / "data" / "train.jsonl").write_text(json.dumps({"prompt": "hi"}) + "\n")
    inside = HFPrompts(str(tmp_path / "ds"), data_files="data/train.jsonl")
    inside.check()
    assert inside.load() == ["hi"]
    HFPrompts(data_files=str(tmp_path / "ds" / "data" / "*.jsonl")).check()
    # An evaluation source left with the default key is named as such.
    dm = PreferencePromptDataModule(PROMPTS, HFPrompts(str(tmp_path / "no_such_dataset")))
    with pytest.raises(OSError, match=r"\(`data.init_args.eval_prompts`\)"):
        dm.setup("fit")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", r"`data.init_args.train_prompts` yielded no prompts: .*empty.jsonl.* has no rows"),
        (
            json.dumps({"text": "a"}) + "\n",
            r"`data.init_args.train_prompts.init_args.prompt_column`='prompt' is not",
        ),
    ],
)
def test_hf_prompts_check_reads_local_files(tmp_path, content, match):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        HFPrompts(data_files=str(path)).check()
    with pytest.raises(ValueError, match=match.replace(".*empty.jsonl.*", ".*")):
        HFPrompts(str(tmp_path)).check()  # the folder holding it


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(steps_per_preference=0), "steps_per_preference"),
        (dict(steps_per_preference=2, per_prompt_preferences=True), "per_prompt_preferences"),
        (dict(grid_divisions=0), "grid_divisions"),
        (dict(num_eval_prompts=0), "num_eval_prompts"),
        (dict(max_prompt_chars=0), "max_prompt_chars"),
        (dict(eval_weights="everything"), "eval_weights"),
        (dict(num_objectives=3), "paper_table1"),
        (dict(eval_weights=[[0.5, 0.6]]), "eval_weights"),
        (dict(alpha=-1.0), r"`data\.init_args\.alpha` must be a positive float"),
        (dict(alpha=[1.0, 1.0, 1.0]), r"`data\.init_args\.alpha` must be a positive float"),
        (dict(eval_weights="lattice", eval_lattice_divisions=0),
         r"`data\.init_args\.eval_lattice_divisions` must be an integer >= 1"),
    ],
)
def test_configuration_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        PreferencePromptDataModule(PROMPTS, **kw)


def test_too_few_prompts_for_a_held_out_sweep():
    dm = PreferencePromptDataModule(ListPrompts(["a", "b"]), num_eval_prompts=2)
    with pytest.raises(ValueError, match="eval_prompts"):
        dm.setup("fit")


def test_meta_tasks_hold_one_preference_on_the_batches_the_module_sees():
    import lightning.pytorch as pl

    from pareto_lightning import MetaLoop

    class Recorder(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.theta = torch.nn.Parameter(torch.zeros(2))
            self.seen = []

        def training_step(self, batch, batch_idx):
            self.seen.append(batch["weights"].clone())
            return (batch["weights"].float() * self.theta).sum() ** 2 + self.theta.sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = PreferencePromptDataModule(
        PROMPTS, batch_size=2, num_eval_prompts=2, seed=11
    )  # task length from MetaLoop
    module = Recorder()
    trainer = pl.Trainer(max_steps=36, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         callbacks=[MetaLoop(inner_steps=3, tasks_per_meta_step=2)])  # fmt: skip
    trainer.fit(module, dm)
    assert dm.steps_per_preference == 3
    tasks = [module.seen[i : i + 3] for i in range(0, 36, 3)]
    for task in tasks:
        assert all(torch.equal(b, task[0]) for b in task)
    firsts = [t[0][0].tolist() for t in tasks]
    assert sum(a != b for a, b in zip(firsts, firsts[1:], strict=False)) >= 7


def test_a_prompt_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "a note"}\n{"prompt": "caf\xe9 note"}\n')
    key = r"`data.init_args.train_prompts.init_args.data_files`: .*latin1.jsonl is not UTF-8 text \(byte 0xe9 on line 2"
    with pytest.raises(ValueError, match=key):
        HFPrompts(data_files=str(path)).check()
    with pytest.raises(ValueError, match=r"`data.init_args.train_prompts` holds text that is not UTF-8"):
        HFPrompts(str(tmp_path)).load()  # a folder of files: found when the column is read
