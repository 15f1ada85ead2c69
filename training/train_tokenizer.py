"""Train the byte-level BPE tokenizer on synthetic task text.

    python3 training/train_tokenizer.py --out models/starflink-synth-14m [--vocab 4096] [--docs 1500]

ByteLevel BPE (GPT-2 style byte alphabet, so any text round-trips and there is no <unk>). Numbers are cut
into groups of up to 3 digits from the left (like Llama 3's tokenizer) and every group of 1-3 digits is one
token (the corpus lists all of them), so a 7-digit needle is 3 tokens drawn from ~1,100 symbols. Why not one
token per digit (the first version): copying a string over a 10-symbol alphabet needs multi-token matching,
and a small model trained from scratch did not learn it in 160M tokens, while a copy over a large alphabet is
learned within a few hundred steps (see docs/accuracy.md). No post-processor: BOS is
added by the caller ([BOS] + tokenize(context)), never by the tokenizer. Special tokens: <pad>=0, <s>=1
(BOS), </s>=2 (EOS).
"""
import argparse
import json
import os
import sys

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tasks  # noqa: E402

SPECIALS = ["<pad>", "<s>", "</s>"]


def corpus(n_docs):
    for width in (1, 2, 3):  # every 1-3 digit group, a few times over, so each becomes one token
        groups = " ".join(f"{i:0{width}d}" for i in range(10 ** width))
        for _ in range(300):  # enough that these merges outrank the rarer word merges
            yield groups
    rough = lambda s: max(1, len(s) // 4)  # noqa: E731 - rough token count, only shapes lengths here
    for i in range(n_docs):
        kind = tasks.KINDS[i % len(tasks.KINDS)]
        inst = tasks.build(kind, 512 + (i * 977) % 3500, (1 << 63) + i, rough, n_extra=1)
        yield inst.context + inst.question + " " + inst.answer
        for q, a in inst.extra_qa:
            yield q + " " + a


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--docs", type=int, default=1500)
    args = ap.parse_args()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\d{1,3}"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab, special_tokens=SPECIALS, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(args.docs), trainer=trainer)
    os.makedirs(args.out, exist_ok=True)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": None,
        "add_bos_token": False, "add_eos_token": False,
        "model_max_length": 16384, "clean_up_tokenization_spaces": False,
    }
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(args.out, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}, f, indent=2)
    missing = [g for w in (1, 2, 3) for g in (f"{i:0{w}d}" for i in range(10 ** w)) if tok.token_to_id(g) is None]
    if missing:
        raise SystemExit(f"digit groups without a token: {missing[:10]}...")
    print("vocab", tok.get_vocab_size(), [tok.token_to_id(s) for s in SPECIALS])


if __name__ == "__main__":
    main()
