"""Synthetic RULER-style long-context tasks (context / question / answer split of Star Attention).

Deterministic from a seed (SplitMix64, so the Java RulerTasks generator can reproduce the same instances),
length-targeted in tokens through a token counter. The formats are specified in docs/tasks.md; keep the two
in sync.

    inst = build(kind, target_len, seed, count)      # count(str) -> number of tokens (no BOS)
    inst.context, inst.question, inst.answer          # strings; answer is canonical (no leading space)
    inst.extra_qa                                     # more (question, answer) pairs about the same context
                                                      # (training only; evaluation uses question/answer)

Sequence layout (contract): [BOS] + tok(context) + tok(question) + tok(" " + answer) + [EOS].
target_len bounds 1 + len(tok(context)) + len(tok(question)).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

MASK64 = (1 << 64) - 1

KINDS = ["niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery", "vt", "cwe", "qa"]


class SplitMix64:
    """SplitMix64; identical in Java (RulerTasks.Rng)."""

    def __init__(self, seed: int):
        self.state = seed & MASK64

    def next64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform-ish int in [0, n): (next64 >>> 1) % n."""
        return (self.next64() >> 1) % n

    def uniform(self) -> float:
        return (self.next64() >> 11) * (1.0 / (1 << 53))

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def shuffle(self, lst) -> None:
        for i in range(len(lst) - 1, 0, -1):
            j = self.below(i + 1)
            lst[i], lst[j] = lst[j], lst[i]

    def sample(self, seq, k):
        """k distinct elements: partial Fisher-Yates on a copy, first k."""
        pool = list(seq)
        for i in range(k):
            j = i + self.below(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]

    def digits(self, n: int) -> str:
        """n-digit decimal number without a leading zero."""
        s = str(1 + self.below(9))
        for _ in range(n - 1):
            s += str(self.below(10))
        return s

    def upper_word(self, n: int) -> str:
        return "".join(chr(65 + self.below(26)) for _ in range(n))


def _load_lexicon():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lexicon.txt")
    sec, out = None, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                sec = line[1:-1]
                out[sec] = []
                continue
            out[sec].extend(w.replace("_", " ") for w in line.split())
    return out


LEX = _load_lexicon()
NOUN, ADJ, VERB, VERBI = LEX["noun"], LEX["adj"], LEX["verb"], LEX["verbi"]
PLACE, ADV, TIME = LEX["place"], LEX["adv"], LEX["time"]
# single words only, deduplicated, first occurrence order: the pool of the common-words task
CWE_POOL = list(dict.fromkeys(w for w in NOUN + ADJ + VERB + VERBI + ADV if " " not in w))

# Filler sentence templates. Slots: {n} noun, {a} adjective, {v} transitive verb (past), {i} intransitive
# verb (past), {p} place, {d} adverb, {t} time phrase, {T} time phrase capitalised.
TEMPLATES = [
    "The {a} {n} {v} the {n} near the {p}.",
    "A {a} {n} {i} {d} by the {p}.",
    "{T}, the {n} {v} a {a} {n}.",
    "Nobody expected that the {n} would be so {a}.",
    "The {n} and the {n} {i} together {t}.",
    "Near the {p}, a {n} {v} the {a} {n} {d}.",
    "Everyone said the {n} was {a} and {a}.",
    "{T}, a {a} {n} {i}.",
    "The {n} {d} {v} every {n} in the {p}.",
    "It was a {a} day, and the {n} {i} {d}.",
    "Some {n}s {v} the {n} while others {i}.",
    "Beyond the {p} there was a {a} {n}.",
    "The old {n} {v} a {n} {t}.",
    "When the {n} {i}, the {a} {n} {v} the {n}.",
    "A {n} from the {p} {v} the {a} {n}.",
    "The {a} {n} had never {v} a {n} before.",
    "According to the {n}, the {p} was {a} {t}.",
    "They {v} the {a} {n} and {i} {d}.",
    "Every {n} near the {p} looked {a}.",
    "The {n} {i} because the {n} was {a}.",
    "Under the {a} sky, the {n} {v} the {n}.",
    "Few people knew why the {n} {i} {t}.",
    "The story of the {a} {n} began at the {p}.",
    "Later, the {n} {v} the {n} {d}.",
]

PREFIX = {
    "niah": "Some special magic numbers are hidden within the following text. Make sure to memorize it. "
            "I will quiz you about the numbers afterwards.\n",
    "vt": "Memorize and track the chain(s) of variable assignment hidden in the following text.\n",
    "cwe": "Below is a list of words. Some of them appear more often than others. "
           "Memorize the ones that appear most often.\n",
    "qa": "Read the following text carefully. Some facts about people are hidden in it. "
          "Answer the question about them afterwards.\n",
}


def filler_sentence(rng: SplitMix64) -> str:
    tpl = TEMPLATES[rng.below(len(TEMPLATES))]
    out, i = [], 0
    while i < len(tpl):
        c = tpl[i]
        if c == "{":
            slot = tpl[i + 1]
            i += 3
            if slot == "n":
                out.append(rng.choice(NOUN))
            elif slot == "a":
                out.append(rng.choice(ADJ))
            elif slot == "v":
                out.append(rng.choice(VERB))
            elif slot == "i":
                out.append(rng.choice(VERBI))
            elif slot == "p":
                out.append(rng.choice(PLACE))
            elif slot == "d":
                out.append(rng.choice(ADV))
            elif slot == "t":
                out.append(rng.choice(TIME))
            elif slot == "T":
                t = rng.choice(TIME)
                out.append(t[0].upper() + t[1:])
            else:
                raise ValueError(slot)
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclass
class Instance:
    kind: str
    context: str
    question: str
    answer: str
    extra_qa: list = field(default_factory=list)
    seed: int = 0
    target_len: int = 0


def magic_key(rng):
    return rng.choice(ADJ) + "-" + rng.choice(NOUN)


def distinct(rng, make, k):
    seen, out = set(), []
    while len(out) < k:
        x = make(rng)
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def needle(key, value):
    return f"One of the special magic numbers for {key} is: {value}."


def q_single(key):
    return (f"\nWhat is the special magic number for {key} mentioned in the provided text? "
            f"The special magic number for {key} mentioned in the provided text is")


def q_multi(keys_text):
    return (f"\nWhat are all the special magic numbers for {keys_text} mentioned in the provided text? "
            f"The special magic numbers for {keys_text} mentioned in the provided text are")


def join_and(items):
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _haystack(rng, prefix, needles, budget, count, ordered):
    """prefix + " s1 s2 ..." with filler sentences filling `budget` tokens, needles at random gaps.

    Counting is additive: count(prefix) + sum(count(" " + s)). Needles keep their list order when
    `ordered` (otherwise they are placed independently but still in list order of sorted gaps)."""
    used = count(prefix) + sum(count(" " + s) for s in needles)
    filler = []
    while True:
        s = filler_sentence(rng)
        c = count(" " + s)
        if used + c > budget:
            break
        used += c
        filler.append(s)
    gaps = sorted(rng.below(len(filler) + 1) for _ in needles)
    items, j = [], 0
    for gi, g in enumerate(gaps):
        items.extend(filler[j:g])
        j = g
        items.append(needles[gi])
    items.extend(filler[j:])
    return prefix + "".join(" " + s for s in items), items


def build(kind: str, target_len: int, seed: int, count, n_extra: int = 0) -> Instance:
    """One task instance. `count` maps a string to its token count (no BOS)."""
    rng = SplitMix64(seed)
    extra = []
    if kind.startswith("niah"):
        prefix = PREFIX["niah"]
        if kind == "niah_single":
            key, = distinct(rng, magic_key, 1)
            val = rng.digits(7)
            needles = [needle(key, val)]
            question, answer = q_single(key), val
        elif kind == "niah_multikey":
            keys = distinct(rng, magic_key, 4)
            vals = distinct(rng, lambda r: r.digits(7), 4)
            needles = [needle(k, v) for k, v in zip(keys, vals)]
            order = list(range(4))
            rng.shuffle(order)
            question, answer = q_single(keys[order[0]]), vals[order[0]]
            extra = [(q_single(keys[t]), vals[t]) for t in order[1:1 + n_extra]]
        elif kind == "niah_multivalue":
            key, = distinct(rng, magic_key, 1)
            vals = distinct(rng, lambda r: r.digits(7), 4)
            needles = [needle(key, v) for v in vals]
            question, answer = q_multi(key), ", ".join(vals)  # order of appearance (= list order)
        elif kind == "niah_multiquery":
            keys = distinct(rng, magic_key, 4)
            vals = distinct(rng, lambda r: r.digits(7), 4)
            needles = [needle(k, v) for k, v in zip(keys, vals)]
            order = list(range(4))
            rng.shuffle(order)
            question = q_multi(join_and([keys[t] for t in order]))
            answer = ", ".join(vals[t] for t in order)  # question order
            for _ in range(n_extra):
                o2 = rng.sample(range(4), 2)
                extra.append((q_multi(join_and([keys[t] for t in o2])), ", ".join(vals[t] for t in o2)))
        else:
            raise ValueError(kind)
        # needles are shuffled before placement so their text order is random, except multi-value whose
        # canonical answer is the order of appearance: shuffle values first, then the answer follows.
        if kind != "niah_multivalue":
            rng.shuffle(needles)
        budget = target_len - 1 - count(question)
        context, _ = _haystack(rng, prefix, needles, budget, count, ordered=False)
    elif kind == "vt":
        prefix = PREFIX["vt"]
        names = distinct(rng, lambda r: r.upper_word(5), 10)
        values = distinct(rng, lambda r: r.digits(5), 2)
        chains = [names[0:5], names[5:10]]
        stmts = []
        for ch, val in zip(chains, values):
            s = [f"VAR {ch[0]} = {val}."] + [f"VAR {ch[h]} = VAR {ch[h - 1]}." for h in range(1, 5)]
            stmts.append(s)
        # interleave the two chains keeping each chain's order: random merge
        merged, i0, i1 = [], 0, 0
        while i0 < 5 or i1 < 5:
            if i1 >= 5 or (i0 < 5 and rng.below(2) == 0):
                merged.append(stmts[0][i0]); i0 += 1
            else:
                merged.append(stmts[1][i1]); i1 += 1

        def q_vt(v):
            return (f"\nQuestion: Find all variables that are assigned the value {v} in the text above. "
                    f"Answer: According to the chain(s) of variable assignment in the text above, "
                    f"5 variables are assigned the value {v}, they are:")
        which = rng.below(2)
        question, answer = q_vt(values[which]), ", ".join(chains[which])
        if n_extra:
            extra = [(q_vt(values[1 - which]), ", ".join(chains[1 - which]))]
        budget = target_len - 1 - count(question)
        context, _ = _haystack(rng, prefix, merged, budget, count, ordered=True)
    elif kind == "cwe":
        prefix = PREFIX["cwe"]
        common = rng.sample(CWE_POOL, 5)
        cset = set(common)
        rare = [w for w in CWE_POOL if w not in cset]
        question = ("\nQuestion: What are the 5 most common words in the above list? "
                    "Answer: The 5 words that appear most often in the list are:")
        budget = target_len - 1 - count(question)
        used = count(prefix) + 1  # the final "." after the last word
        words = []
        while True:
            w = common[rng.below(5)] if rng.uniform() < 0.3 else rare[rng.below(len(rare))]
            c = count(" " + w + ",")
            if used + c > budget:
                break
            used += c
            words.append(w)
        first = []
        for w in words:
            if w in cset and w not in first:
                first.append(w)
        for w in common:  # (only at tiny lengths) a common word that never appeared goes last
            if w not in first:
                first.append(w)
        context = prefix + "".join(" " + w + "," for w in words[:-1]) + " " + words[-1] + "."
        answer = ", ".join(first)
    elif kind == "qa":
        prefix = PREFIX["qa"]
        people = distinct(rng, lambda r: r.choice(LEX["first"]) + " " + r.choice(LEX["last"]), 4)
        facts, qas = [], []
        for p in people:
            rel = rng.below(4)
            if rel == 0:
                v = rng.choice(LEX["city"])
                facts.append(f"{p} lives in the city of {v}.")
                qas.append((f"\nQuestion: In which city does {p} live? Answer:", v))
            elif rel == 1:
                v = rng.choice(LEX["color"])
                facts.append(f"The favorite color of {p} is {v}.")
                qas.append((f"\nQuestion: What is the favorite color of {p}? Answer:", v))
            elif rel == 2:
                v = rng.choice(LEX["job"])
                facts.append(f"{p} works as a {v}.")
                qas.append((f"\nQuestion: What does {p} work as? Answer:", v))
            else:
                v = rng.choice(LEX["animal"])
                facts.append(f"{p} keeps a pet {v} at home.")
                qas.append((f"\nQuestion: What kind of pet does {p} keep at home? Answer:", v))
        order = list(range(4))
        rng.shuffle(order)
        question, answer = qas[order[0]]
        extra = [qas[t] for t in order[1:1 + n_extra]]
        budget = target_len - 1 - count(question)
        context, _ = _haystack(rng, prefix, facts, budget, count, ordered=False)
    else:
        raise ValueError(kind)
    return Instance(kind, context, question, answer, extra[:n_extra], seed, target_len)


def build_recall(target_len: int, seed: int, count, n_keys: int) -> Instance:
    """Training only (not an evaluation task): a dense key -> value recall document.

    `n_keys` needles in the niah format (distinct keys, 7-digit values; a third of the keys carry two values)
    in a short haystack, and one question per key in random order (single-value keys in the niah_single
    format, two-value keys in the niah_multivalue format). Many lookups per document instead of the RULER
    tasks' one to four; on its own it did not form a retrieval circuit (docs/accuracy.md): it is meant to
    build on the induction head that train.py's repeat documents form first."""
    rng = SplitMix64(seed)
    keys = distinct(rng, magic_key, n_keys)
    vals = distinct(rng, lambda r: r.digits(7), 2 * n_keys)
    pairs = []  # (key, value) needles
    for i, k in enumerate(keys):
        pairs += [(k, vals[2 * i]), (k, vals[2 * i + 1])] if rng.below(3) == 0 else [(k, vals[2 * i])]
    rng.shuffle(pairs)
    by_key = {}  # key -> its values in order of appearance (the multi-value answer order)
    for k, v in pairs:
        by_key.setdefault(k, []).append(v)
    qas = [(q_single(k), vs[0]) if len(vs) == 1 else (q_multi(k), ", ".join(vs)) for k, vs in by_key.items()]
    rng.shuffle(qas)
    placed = [needle(k, v) for k, v in pairs]
    context, _ = _haystack(rng, PREFIX["niah"], placed, target_len, count, ordered=False)
    q0, a0 = qas[0]
    return Instance("recall", context, q0, a0, qas[1:], seed, target_len)


def eval_seed(kind: str, target_len: int, index: int) -> int:
    """Held-out evaluation seeds (training seeds are >= 2**62)."""
    return 1_000_003 * (KINDS.index(kind) + 1) * 100_000 + target_len * 1_009 + index


def normalize(kind: str, text: str):
    """Normalized answer for exact match: trimmed string, or for list answers the list of trimmed items."""
    text = text.strip()
    if kind in ("niah_multivalue", "niah_multiquery", "vt", "cwe"):
        return [x.strip() for x in text.split(",")]
    return text
