"""Numbers read as values: an xVal-style input embedding for the lexicon model.

A model that reads ``w = 0.95`` digit by digit has to learn what every digit means at every decimal place, and
reinforcement learning on the 11 training weights ``0.0, 0.1, ..., 1.0`` never varies the second decimal: the
model's reading of it fades, and unseen weights such as ``0.95`` are read through the first digit alone
(``docs/steering.md``). xVal (Golkar et al., 2023, "xVal: A Continuous Number Encoding for Large Language
Models") instead embeds a number as one learned vector scaled by its value, so that ``0.95`` lies between
``0.9`` and ``1.0`` in the model's input space.

:class:`NumberEmbedding` does this inside the embedding layer, with the prompt text unchanged: every token of a
number (its digits and its decimal point) is embedded as ``number + value * scale``, two learned vectors, in
place of the digit embeddings. The text still carries the digits, so a tokenizer, a dataset or a log reads the
same prompt as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def number_values(input_ids: Tensor, digit_ids: Sequence[int], point_id: int) -> tuple[Tensor, Tensor]:
    """Where the numbers are in a batch of token ids, and their values.

    A number is a run of digit tokens, with at most one decimal point between two digits (a point that does not
    sit between two digits, such as a sentence's full stop, is not part of it).

    Args:
        input_ids: ``[B, L]`` token ids.
        digit_ids: the ids of the tokens ``"0"`` ... ``"9"``, in that order.
        point_id: the id of the token ``"."``.

    Returns:
        ``mask [B, L]`` (True on the tokens of a number) and ``values [B, L]`` (float32: each number's value
        on its tokens, 0 elsewhere).

    Example:
        >>> # ids 0-9 are the digits, 10 is ".", 11 is a word: "w 0.95. w 1 ." -> 0.95 on 4 tokens, 1 on one
        >>> mask, values = number_values(torch.tensor([[11, 0, 10, 9, 5, 10, 11, 1, 10]]), range(10), 10)
        >>> mask.int().tolist(), [round(v, 2) for v in values[0].tolist()]
        ([[0, 1, 1, 1, 1, 0, 0, 1, 0]], [0.0, 0.95, 0.95, 0.95, 0.95, 0.0, 0.0, 1.0, 0.0])
    """
    digit = {token: str(d) for d, token in enumerate(digit_ids)}
    is_digit = torch.isin(input_ids, torch.tensor(list(digit), device=input_ids.device))  # [B, L]
    if not bool(is_digit.any()):  # most calls: a generation step writes one word per row
        return is_digit, torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
    between = torch.zeros_like(is_digit)
    between[:, 1:-1] = is_digit[:, :-2] & is_digit[:, 2:]
    candidate = is_digit | ((input_ids == point_id) & between)  # [B, L]
    # Only the few candidate tokens are visited in Python: a number continues on the next column of its row,
    # with at most one decimal point.
    rows, cols = (t.tolist() for t in candidate.nonzero(as_tuple=True))
    tokens = input_ids[candidate].tolist()
    spans: list[tuple[int, int, int, str]] = []  # (row, first column, last column + 1, text); never ends in "."
    for b, j, token in zip(rows, cols, tokens, strict=True):
        char = digit.get(token, ".")
        row, first, stop, text = spans[-1] if spans else (-1, -1, -1, "")
        if row == b and stop == j and (char != "." or "." not in text):
            spans[-1] = (row, first, j + 1, text + char)
        elif char != ".":  # a point cannot open a number
            spans.append((b, j, j + 1, char))
    width = input_ids.shape[1]
    flat: list[int] = []
    numbers: list[float] = []
    for b, first, _, text in spans:
        flat.extend(range(b * width + first, b * width + first + len(text)))
        numbers.extend([float(text)] * len(text))
    mask = torch.zeros(input_ids.numel(), dtype=torch.bool)
    values = torch.zeros(input_ids.numel(), dtype=torch.float32)
    mask[flat] = True
    values[flat] = torch.tensor(numbers, dtype=torch.float32)
    mask, values = mask.view(input_ids.shape), values.view(input_ids.shape)
    return mask.to(input_ids.device), values.to(input_ids.device)


class NumberEmbedding(nn.Embedding):
    """A token embedding that embeds every number as ``number + value * scale`` (xVal-style).

    Other tokens are embedded as usual; the ``weight`` matrix is the ordinary one, so it can stay tied to the
    output layer. ``number`` and ``scale`` are learned ``[hidden]`` vectors.

    Args:
        num_embeddings: vocabulary size.
        embedding_dim: hidden size.
        digit_ids: the ids of ``"0"`` ... ``"9"``.
        point_id: the id of ``"."``.
        padding_idx: as in ``nn.Embedding``.

    Example:
        >>> emb = NumberEmbedding(12, 4, digit_ids=range(10), point_id=10)
        >>> out = emb(torch.tensor([[11, 0, 10, 5], [11, 1, 10, 0]]))  # "w 0.5", "w 1.0"
        >>> torch.allclose(out[0, 1:], emb.number + 0.5 * emb.scale), torch.equal(out[:, 0], emb.weight[[11, 11]])
        (True, True)
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        digit_ids: Sequence[int],
        point_id: int,
        padding_idx: int | None = None,
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx)
        if len(digit_ids) != 10:
            raise ValueError(f"`digit_ids` must hold the 10 ids of '0'..'9'; got {list(digit_ids)}.")
        self.digit_ids, self.point_id = [int(d) for d in digit_ids], int(point_id)
        self.number = nn.Parameter(torch.zeros(embedding_dim))
        self.scale = nn.Parameter(torch.zeros(embedding_dim))

    def reset_number_parameters(self, std: float) -> None:
        """Draw ``number`` and ``scale`` from ``N(0, std^2)`` (from the current torch random state)."""
        with torch.no_grad():
            self.number.normal_(0.0, std)
            self.scale.normal_(0.0, std)

    def forward(self, input_ids: Tensor) -> Tensor:
        out = super().forward(input_ids)  # [B, L, H]
        mask, values = number_values(input_ids, self.digit_ids, self.point_id)  # [B, L] each
        if not bool(mask.any()):
            return out
        numeric = self.number + values.to(out.dtype).unsqueeze(-1) * self.scale  # [B, L, H]
        return torch.where(mask.unsqueeze(-1), numeric, out)


__all__ = ["NumberEmbedding", "number_values"]
