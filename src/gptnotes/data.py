"""Text to token ids, and token ids to training batches.

The path from a text file to what a language model trains on:

1. [`CharTokenizer`][gptnotes.data.CharTokenizer] maps every character to an integer id and back.
2. [`train_val_split`][gptnotes.data.train_val_split] keeps the first 90% of the ids for
   training, the rest for validation.
3. [`get_batch`][gptnotes.data.get_batch] cuts ``batch_size`` random windows of ``block_size``
   ids out of the data with `torch.stack`, and the same windows shifted by one as targets.

[`load_corpus`][gptnotes.data.load_corpus] returns a small text shipped with the package (about
11 KB of short dialogues and fables written for this project), so that every example runs
without a download; [`load_text`][gptnotes.data.load_text] reads any other UTF-8 file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import torch

from gptnotes._checks import check_existing_file, check_int_tensor, check_positive_int

__all__ = ["CharTokenizer", "train_val_split", "get_batch", "load_text", "load_corpus"]

_CORPUS_FILE = ("corpus", "tiny_corpus.txt")


class CharTokenizer:
    """A character-level tokenizer: one id per distinct character of a text.

    The vocabulary is the sorted set of the characters of ``text``, so the same text
    always gives the same ids.

    Args:
        text: The text whose characters form the vocabulary. Must not be empty.

    Attributes:
        chars: The vocabulary, a sorted list of single characters; ``chars[i]`` has id ``i``.
        vocab_size: ``len(chars)``.

    Raises:
        TypeError: If ``text`` is not a ``str``.
        ValueError: If ``text`` is empty.

    Examples:
        >>> from gptnotes import CharTokenizer
        >>> tok = CharTokenizer("hello world")
        >>> tok.chars
        [' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w']
        >>> tok.encode("hello")
        [3, 2, 4, 4, 5]
        >>> tok.decode([3, 2, 4, 4, 5])
        'hello'
    """

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("text must not be empty: the vocabulary is built from its characters")
        self.chars: list[str] = sorted(set(text))
        self.vocab_size: int = len(self.chars)
        self._stoi = {ch: i for i, ch in enumerate(self.chars)}

    def encode(self, text: str) -> list[int]:
        """Return the id of every character of ``text``.

        Raises:
            TypeError: If ``text`` is not a ``str``.
            ValueError: If ``text`` has a character outside the vocabulary; the message
                names the character and its position.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        try:
            return [self._stoi[ch] for ch in text]
        except KeyError:
            pos = next(i for i, ch in enumerate(text) if ch not in self._stoi)
            raise ValueError(
                f"text has character {text[pos]!r} at position {pos}, which is not in the "
                f"vocabulary of {self.vocab_size} characters"
            ) from None

    def encode_tensor(self, text: str) -> torch.Tensor:
        """Return the ids of ``text`` as a 1-D ``torch.long`` tensor, without a Python list.

        The same ids as ``torch.tensor(encode(text))``, but a long text costs 8 bytes per
        character (the result) plus a 4-byte-per-character window of 1 MB at a time, instead
        of a Python list of ints (about 18 bytes per character on top).

        Shape:
            - Output: ``(N,)`` for a text of ``N`` characters, dtype ``torch.long``.

        Raises:
            TypeError: If ``text`` is not a ``str``.
            ValueError: If ``text`` has a character outside the vocabulary.

        Examples:
            >>> from gptnotes import CharTokenizer
            >>> CharTokenizer("hello").encode_tensor("hole").tolist()
            [1, 3, 2, 0]
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        # chars are sorted by code point, so an id is the position of the code point among them
        codes = torch.tensor([ord(ch) for ch in self.chars], dtype=torch.int32)
        out = torch.empty(len(text), dtype=torch.long)
        window = 1 << 20
        for start in range(0, len(text), window):
            piece = text[start : start + window]
            points = torch.frombuffer(bytearray(piece.encode("utf-32-le")), dtype=torch.int32)
            ids = torch.searchsorted(codes, points).clamp_(max=self.vocab_size - 1)
            bad = codes[ids] != points
            if bool(bad.any()):
                pos = start + int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"text has character {text[pos]!r} at position {pos}, which is not in the "
                    f"vocabulary of {self.vocab_size} characters"
                )
            out[start : start + len(piece)] = ids
        return out

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """Return the text whose characters have the given ids.

        Args:
            ids: A sequence of ints, or a 1-D integer tensor of shape ``(T,)``.

        Shape:
            - ids: ``(T,)`` (a tensor, or a sequence of ``T`` ints); output: a string of ``T``
              characters.

        Raises:
            ValueError: If an id is outside ``[0, vocab_size)``.
        """
        if isinstance(ids, torch.Tensor):
            check_int_tensor(ids, "ids", ndim=(0, 1))
            ids = ids.reshape(-1).tolist()
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise TypeError(f"ids must be a sequence of ints or a 1-D integer tensor, got {type(ids).__name__}")
        out = []
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(f"ids must be integers, got {type(i).__name__} {i!r}")
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"ids holds {i}, outside the vocabulary [0, {self.vocab_size - 1}]")
            out.append(self.chars[i])
        return "".join(out)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def train_val_split(data: torch.Tensor | Sequence[int], train_fraction: float = 0.9) -> tuple:
    """Split a sequence into its first ``train_fraction`` and the rest, without shuffling.

    The split keeps order on purpose: validation text is text the model has never seen,
    not random characters from inside training sentences.

    Args:
        data: The token ids, a 1-D tensor ``(N,)`` or any sequence.
        train_fraction: Fraction kept for training, strictly between 0 and 1.

    Shape:
        - data: ``(N,)``; train: ``(n,)``; val: ``(N - n,)``.

    Returns:
        ``(train, val)``: ``data[:n]`` and ``data[n:]`` with ``n = int(train_fraction * N)``.

    Raises:
        TypeError: If ``data`` is not a tensor or sequence, or ``train_fraction`` is not a
            real number.
        ValueError: If ``train_fraction`` is not in (0, 1), ``data`` is a tensor that is not
            1-D, or either part would be empty.

    Examples:
        >>> import torch
        >>> from gptnotes import train_val_split
        >>> train, val = train_val_split(torch.arange(10))
        >>> train.tolist(), val.tolist()
        ([0, 1, 2, 3, 4, 5, 6, 7, 8], [9])
    """
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)):
        raise TypeError(f"train_fraction must be a number in (0, 1), got {type(train_fraction).__name__}")
    if not 0.0 < float(train_fraction) < 1.0:
        raise ValueError(f"train_fraction must be strictly between 0 and 1, got {train_fraction!r}")
    if not isinstance(data, (torch.Tensor, Sequence)):
        raise TypeError(f"data must be a 1-D tensor or a sequence, got {type(data).__name__}")
    if isinstance(data, torch.Tensor) and data.dim() != 1:
        raise ValueError(f"data must be 1-D, got shape {tuple(data.shape)}")
    n = int(train_fraction * len(data))
    if n == 0 or n == len(data):
        raise ValueError(
            f"data of length {len(data)} is too short to split with train_fraction={train_fraction}: "
            "one part would be empty"
        )
    return data[:n], data[n:]


def get_batch(
    data: torch.Tensor,
    block_size: int,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``batch_size`` random windows of ``block_size`` tokens, and their targets.

    ``x[b]`` is ``data[i : i + block_size]`` for a random start ``i``, and ``y[b]`` is the
    same window one token later, so ``y[b, t]`` is the token that follows ``x[b, t]``.
    One batch therefore holds ``B * T`` next-token examples.

    Args:
        data: 1-D integer tensor of token ids, shape ``(N,)`` with ``N >= block_size + 1``.
        block_size: T, the length of each window (the context length).
        batch_size: B, the number of windows.
        generator: Optional `torch.Generator` for reproducible batches.

    Shape:
        - data: ``(N,)``
        - x, y: ``(B, T)``, dtype of ``data``

    Returns:
        ``(x, y)``, the inputs and the targets.

    Raises:
        TypeError: If ``data`` is not an integer tensor, or a size is not an integer.
        ValueError: If ``data`` is not 1-D, a size is not positive, or ``data`` is shorter
            than ``block_size + 1``.

    Examples:
        >>> import torch
        >>> from gptnotes import get_batch
        >>> data = torch.arange(100)
        >>> x, y = get_batch(data, block_size=8, batch_size=4, generator=torch.Generator().manual_seed(0))
        >>> tuple(x.shape), tuple(y.shape)
        ((4, 8), (4, 8))
        >>> bool((y[:, :-1] == x[:, 1:]).all())
        True
    """
    check_int_tensor(data, "data", ndim=1)
    block_size = check_positive_int(block_size, "block_size")
    batch_size = check_positive_int(batch_size, "batch_size")
    if len(data) < block_size + 1:
        raise ValueError(
            f"data has {len(data)} tokens, but block_size={block_size} needs at least "
            f"block_size + 1 = {block_size + 1} (a window and the token after it)"
        )
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i : i + block_size] for i in ix.tolist()])
    y = torch.stack([data[i + 1 : i + block_size + 1] for i in ix.tolist()])
    return x, y


def load_text(path: str | Path) -> str:
    """Read a UTF-8 text file, with a clear error if it is missing, empty or not text.

    Args:
        path: Path of the file.

    Returns:
        The text of the file.

    Raises:
        TypeError: If ``path`` is not a str or path-like object.
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If ``path`` is a folder or not a regular file (a pipe, a device), or the
            file is empty or is not valid UTF-8.

    Examples:
        >>> import tempfile, pathlib
        >>> from gptnotes import load_text
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = pathlib.Path(folder) / "tiny.txt"
        ...     _ = path.write_text("un café", encoding="utf-8")
        ...     load_text(path)
        'un café'
    """
    p = check_existing_file(path, "text file")
    raw = p.read_bytes()
    if not raw:
        raise ValueError(f"path: the file {str(p)!r} is empty; a language model needs text to learn from")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"path: the file {str(p)!r} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def load_corpus() -> str:
    """Return the small training text shipped inside the package.

    About 11 KB of plain English (short dialogues, fables and a few lists about the sea,
    counting and learning) written for GPT Notes, in 72 distinct ASCII characters:
    letters, digits, punctuation, spaces and newlines. It is big enough for a
    character-level bigram model or a tiny GPT to learn visible structure (names in
    capitals followed by a colon and a new line, common words, punctuation) and small
    enough to train on in seconds on a CPU. It is read with `importlib.resources`,
    so it works from an installed wheel as well as from a source checkout.

    Returns:
        The text, always the same.

    Examples:
        >>> from gptnotes import CharTokenizer, load_corpus
        >>> text = load_corpus()
        >>> tok = CharTokenizer(text)
        >>> tok.vocab_size
        72
        >>> tok.decode(tok.encode(text)) == text
        True
    """
    folder, name = _CORPUS_FILE
    return resources.files("gptnotes").joinpath(folder).joinpath(name).read_text(encoding="utf-8")
