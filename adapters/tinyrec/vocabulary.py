"""TinyRec's tokenizer: a byte-level BPE trained on catalog texts, plus one token per item.

Every item that enough training users played gets its own token whose text is the item's
title followed by a newline (a ``tokenizers`` added token, matched case-sensitively), which is
exactly one line of the recommendation prompt's history. So a history is one token per item,
the ranking of the next item is one forward pass, and decoded output is still the titles, one
per line. All other text (rare titles, artists, genres, countries, profile prompts and
profiles) goes through a byte-level BPE (any Unicode text encodes; nothing maps to an unknown
token) trained with the ``tokenizers`` library on the catalog's texts and the training
profiles. No BPE token contains a raw newline, so item tokens never share an id with a BPE
piece. The tokenizer is saved as a standard ``PreTrainedTokenizerFast`` (``tokenizer.json``),
so ``AutoTokenizer.from_pretrained(model_dir)`` loads it; it prepends ``<|bos|>`` to every
text and pads on the left.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from audit_sdk.data.tables import Dataset
from audit_sdk.recommendation_prompts import clean_title, recommendation_header

__all__ = [
    "BOS_TOKEN",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "ItemVocabulary",
    "build_tokenizer",
    "choose_item_vocabulary",
    "item_token_text",
]

PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|bos|>"
EOS_TOKEN = "<|eos|>"
_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class ItemVocabulary:
    """The items that get their own token, most played first, with their titles (the token
    text is the title and a newline, :func:`item_token_text`)."""

    item_ids: list[str]
    titles: list[str]
    n_candidates: int
    n_excluded: int

    def __len__(self) -> int:
        return len(self.item_ids)


def item_token_text(title: str) -> str:
    """The text of an item's token: one line of the recommendation prompt's history."""
    return f"{title}\n"


def _reserved_words(dataset: Dataset) -> set[str]:
    """Single words that prompts use as ordinary words: an item titled like one of them
    would turn instructions into item tokens, so it gets no token (lower-cased)."""
    texts = [
        recommendation_header(unit="artist", order="chronological"),
        recommendation_header(unit="track", order="plays"),
    ]
    with contextlib.suppress(OSError):  # the template ships with the SDK
        texts.append(
            resources.files("audit_sdk")
            .joinpath("templates", "profile_prompt.j2")
            .read_text(encoding="utf-8")
        )
    words = {w.lower() for text in texts for w in _WORD.findall(text)}
    genres = dataset.catalog.frame.get("genres")
    if genres is not None:
        words |= {str(g).lower() for gs in genres for g in (gs or ())}
    countries = dataset.catalog.frame.get("country")
    if countries is not None:
        words |= {str(c).lower() for c in countries.dropna().unique()}
    words |= {"unknown", "play", "plays"}
    return words


def choose_item_vocabulary(train: Dataset, *, min_item_users: int) -> ItemVocabulary:
    """Items played by at least ``min_item_users`` distinct training users, most played first
    (ties by item id), that have a usable, unique title.

    Excluded: titles shorter than two characters, single-word titles that prompts use as
    ordinary words (instructions, genres, countries), titles that contain special-token
    markup, and a title already taken by a more popular item (only the first keeps it).
    """
    frame = train.interactions.frame
    users_per_item = frame.groupby("item_id", sort=False)["user_id"].nunique()
    users_per_item = users_per_item[users_per_item >= min_item_users]
    ranked = sorted(users_per_item.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    catalog = train.catalog.frame
    reserved = _reserved_words(train)
    taken: set[str] = set()
    item_ids: list[str] = []
    titles: list[str] = []
    excluded = 0
    for item_id, _ in ranked:
        if item_id not in catalog.index:
            excluded += 1
            continue
        title = clean_title(catalog.at[item_id, "title"])
        if (
            len(title) < 2
            or title in taken
            or "<|" in title
            or (" " not in title and title.lower() in reserved)
        ):
            excluded += 1
            continue
        taken.add(title)
        item_ids.append(str(item_id))
        titles.append(title)
    return ItemVocabulary(item_ids, titles, n_candidates=len(ranked), n_excluded=excluded)


def build_tokenizer(
    corpus: Iterable[str],
    items: ItemVocabulary,
    *,
    bpe_vocab_size: int,
    model_max_length: int,
) -> tuple[Any, dict[int, str], int]:
    """Train the BPE on ``corpus``, add the item tokens, wrap as ``PreTrainedTokenizerFast``.

    :returns: the tokenizer, its item map (token id -> item id) and how many items could not
        get a token (always 0 with the byte-level BPE; kept for other BPE recipes).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers.trainers import BpeTrainer
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=bpe_vocab_size,
        min_frequency=2,
        special_tokens=[PAD_TOKEN, BOS_TOKEN, EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS_TOKEN)
    tokenizer.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{BOS_TOKEN} $A",
                pair=f"{BOS_TOKEN} $A $B",
                special_tokens=[(BOS_TOKEN, bos_id)],
            ),
        ]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="left",
        model_max_length=model_max_length,
    )
    kept = [
        (item_token_text(title), item)
        for title, item in zip(items.titles, items.item_ids, strict=True)
        if tokenizer.token_to_id(item_token_text(title)) is None
    ]
    fast.add_tokens(
        [AddedToken(text, single_word=False, normalized=False, special=False) for text, _ in kept]
    )
    token_ids = [cast(int, fast.convert_tokens_to_ids(text)) for text, _ in kept]
    item_map = {int(t): item for t, (_, item) in zip(token_ids, kept, strict=True)}
    base = tokenizer.get_vocab_size()
    if len(item_map) != len(kept) or any(t < base for t in item_map):  # pragma: no cover
        raise RuntimeError("an item token shares its id with another token")
    return fast, item_map, len(items) - len(kept)
