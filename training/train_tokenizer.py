"""Train the byte-level BPE tokenizer on synthetic task text.

    python3 training/train_tokenizer.py --out models/starflink-synth-14m [--vocab 4096] [--docs 1500]

ByteLevel BPE (GPT-2 style byte alphabet, so any text round-trips and there is no <unk>), with a Digits
pre-tokenizer that splits every digit into its own token (numeric needles become one token per digit, so
copying a 7-digit value is 7 copy steps, never a lookup of a rare merged number). No post-processor: BOS is
added by the caller ([BOS] + tokenize(context)), never by the tokenizer. Special tokens: <pad>=0, <s>=1
(BOS), </s>=2 (EOS).
"""
import argparse
import json
import os
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tasks  # noqa: E402

SPECIALS = ["<pad>", "<s>", "</s>"]


def corpus(n_docs):
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
        pre_tokenizers.Digits(individual_digits=True),
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
    print("vocab", tok.get_vocab_size(), [tok.token_to_id(s) for s in SPECIALS])


if __name__ == "__main__":
    main()
