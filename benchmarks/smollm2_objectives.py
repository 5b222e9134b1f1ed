"""Which offline scorers make two objectives that conflict on SmolLM2-135M-Instruct's own text?

Samples completions of the evaluation prompts under a few style instructions (system messages), scores them with
every candidate scorer, and prints the Spearman correlations between scorers plus the mean score per style. Two
objectives worth steering between are recognisable in the text (a style instruction moves them) and are not
trivially aligned (their correlation is low or negative, so no single style maxes both).

    python recipes/smollm2/fetch.py                # once: the model folder
    python benchmarks/smollm2_objectives.py --prompts 12 --samples 2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from pareto_lightning.conditioning import chat_prompt
from pareto_lightning.loading import cache_root, load_pretrained, load_tokenizer
from pareto_lightning.rewards import LLMJudge, TextstatScore, VaderSentiment

ROOT = Path(__file__).resolve().parents[1]
STYLES = {
    "none": None,
    "simple": "Answer in very simple, short words, like talking to a small child.",
    "detailed": "Answer in precise, technical detail, using the proper scientific terms.",
    "cheerful": "Answer in an enthusiastic, warm and cheerful tone.",
    "gloomy": "Answer in a gloomy, pessimistic tone.",
}


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()).clamp_min(1e-12))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=str(Path(cache_root()) / "smollm2-135m-instruct"))
    parser.add_argument("--prompts", type=int, default=12, help="evaluation prompts used")
    parser.add_argument("--samples", type=int, default=2, help="sampled completions per (prompt, style)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--temperature", type=float, default=0.7, help="sampling temperature (the recipes': 0.7)"
    )
    parser.add_argument(
        "--rescore", metavar="JSONL", help="score the completions of an earlier --out instead"
    )
    parser.add_argument("--skip-judge", action="store_true", help="leave out the LLM-judge scorers (slow)")
    parser.add_argument("--out", default=None, help="write every completion and its scores here (JSONL)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    folder = str(Path(args.model).expanduser())
    tok = load_tokenizer(folder, "--model")
    tok.padding_side = "left"
    if args.rescore:
        rows = [json.loads(line) for line in open(args.rescore)]
    else:
        rows = generate(load_pretrained(AutoModelForCausalLM, folder, "--model", "model").eval(), tok, args)
    score_and_report(rows, folder, tok, args)


def generate(model, tok, args) -> list[dict]:
    """Sampled completions of the first ``--prompts`` evaluation prompts under every style instruction."""
    with open(ROOT / "recipes" / "smollm2" / "prompts" / "eval.jsonl") as fh:
        prompts = [json.loads(line)["prompt"] for line in fh][: args.prompts]
    rows, gen_seconds, gen_tokens = [], 0.0, 0
    for style, system in STYLES.items():
        texts = [chat_prompt(system, p, tok) for p in prompts]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=args.max_new_tokens, do_sample=True, top_k=0,
                                 temperature=args.temperature, num_return_sequences=args.samples,
                                 pad_token_id=tok.pad_token_id)  # fmt: skip
        gen_seconds += time.perf_counter() - start
        new = out[:, enc["input_ids"].shape[1] :]
        gen_tokens += int((new != tok.pad_token_id).sum())
        for i, text in enumerate(tok.batch_decode(new, skip_special_tokens=True)):
            rows.append({"style": style, "prompt": prompts[i // args.samples], "completion": text})
    print(f"generated {len(rows)} completions, {gen_tokens} tokens in {gen_seconds:.1f} s "
          f"({gen_tokens / gen_seconds:.1f} tokens/s, batches of {args.prompts * args.samples})")  # fmt: skip
    return rows


def score_and_report(rows: list[dict], folder: str, tok, args) -> None:
    """Score every completion with every candidate and print the correlations and the per-style means."""
    ps, cs = [r["prompt"] for r in rows], [r["completion"] for r in rows]
    # The recipes' two objectives first: Flesch reading ease on [0, 100] and Gunning fog on [0, 20], to [0, 1].
    scorers = {
        "simplicity": TextstatScore(),
        "technicality": TextstatScore("gunning_fog", low=0, high=20),
        "grade_level": TextstatScore("flesch_kincaid_grade", low=0, high=16),
        "positivity": VaderSentiment(),
        "words": TextstatScore("lexicon_count", low=0, high=32),
    }
    if not args.skip_judge:
        judge_model = load_pretrained(AutoModelForCausalLM, folder, "--model", "judge model")
        for name, question in (("judge_helpful", "Is this response helpful?"),
                               ("judge_detailed", "Is this response detailed and informative?")):  # fmt: skip
            scorers[name] = LLMJudge(judge_model, tokenizer=tok, question=question, batch_size=16)
    scores = {}
    for name, fn in scorers.items():
        start = time.perf_counter()
        scores[name] = fn(ps, cs).float()
        print(f"{name}: {time.perf_counter() - start:.2f} s for {len(cs)} completions")
    names = list(scores)
    print("\nSpearman correlation between scorers over all completions")
    print(" " * 15 + "".join(f"{n[:12]:>13}" for n in names))
    for a in names:
        print(f"{a:<15}" + "".join(f"{spearman(scores[a], scores[b]):>13.2f}" for b in names))
    print("\nmean score per style instruction")
    print(f"{'style':<10}" + "".join(f"{n[:12]:>13}" for n in names))
    styles = [r["style"] for r in rows]
    for style in STYLES:
        idx = torch.tensor([s == style for s in styles])
        print(f"{style:<10}" + "".join(f"{scores[n][idx].mean().item():>13.3f}" for n in names))
    if args.out:
        with open(args.out, "w") as fh:
            for i, row in enumerate(rows):
                fh.write(json.dumps({**row, **{n: round(scores[n][i].item(), 4) for n in names}}) + "\n")


if __name__ == "__main__":
    main()
