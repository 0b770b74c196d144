"""The toy world: seeded entities, templates and the pretraining document mixture.

Entities are people whose names are ``first last`` drawn from two name pools (so unseen
names are expressible with known tokens); each has four single-token attributes (city, job,
employer, color). The name combinations are partitioned once, by the world seed, into
disjoint pools:

* ``known``: facts stated in pretraining (closed-book recall and paraphrase suites);
* ``pretrain_fresh``: entities used in pretraining only inside in-context, expert and
  "guess" documents (their facts are never memorised);
* ``injection``: new entities of the injection corpus (never in pretraining);
* ``evaluation``: new entities of the in-context suite (never in pretraining).

The base model's OWN answer style is a full sentence that restates the asked attribute and a
companion attribute ("alice vorn was born in tulsa and works as a baker ."), so a new fact
shapes several answer tokens. The reference style of injected facts ("the answer is tulsa ,
job baker .") appears in pretraining only as a reference shown inside expert documents, never
after a plain question (issue 3).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass

FIRST_NAMES = (
    "alice bruno chen dara elena felix greta hugo irma jonas kira leon mona nils olga pavel "
    "quinn rosa sven tara ulla viktor wanda xavier yara zeno anya boris cleo dmitri edda "
    "fabio gina hans ines jorge kasia lars mila omar"
).split()
LAST_NAMES = (
    "vorn kest arlo brim coda dunn elms frey gault hale ives jarl kobb lund marr nash oakes "
    "pratt quill rusk soto thorn umber vance wick yates zorn ash bell crane drake finch grove "
    "holt irwin keel lake moss north pike"
).split()
VALUES = {
    "city": ("tulsa oslo lima rome paris cairo dublin quito hanoi perth zurich boston denver "
             "madrid prague vienna athens tokyo seoul delhi nairobi lagos havana bogota kyoto "
             "osaka riga sofia porto malmo").split(),
    "job": ("baker pilot nurse farmer lawyer painter plumber teacher dentist chemist sailor "
            "tailor writer singer drummer surgeon butcher cashier miner banker architect "
            "florist jeweler welder librarian").split(),
    "employer": ("acme globex initech umbrella hooli soylent vandelay wonka cyberdyne tyrell "
                 "stark wayne oscorp aperture monarch dunder virtucon nakatomi gringotts "
                 "duff krusty massive weyland zorg buynlarge").split(),
    "color": "red blue green yellow purple orange pink brown black white gray teal".split(),
}
ATTRIBUTES = tuple(VALUES)
# The second attribute every own-style answer restates (so answers carry two facts).
COMPANION = {"city": "job", "job": "employer", "employer": "city", "color": "job"}
# Own-style clauses ("{n} {clause} and {companion clause} .").
CLAUSES = {"city": "was born in {v}", "job": "works as a {v}",
           "employer": "is employed by {v}", "color": "likes the color {v}"}
# Question templates: the first three are used for known entities in pretraining; the last is
# held out for known entities (the paraphrase suite) but used with fresh entities.
QUESTIONS = {
    "city": ["where was {n} born ?", "what is the birthplace of {n} ?",
             "in which city was {n} born ?", "which city is the hometown of {n} ?"],
    "job": ["what is the job of {n} ?", "what does {n} do for a living ?",
            "what is the profession of {n} ?", "what kind of work does {n} do ?"],
    "employer": ["where does {n} work ?", "who employs {n} ?",
                 "which company does {n} work for ?", "what is the employer of {n} ?"],
    "color": ["what is the favorite color of {n} ?", "which color does {n} like most ?",
              "what color does {n} love ?", "what is the preferred color of {n} ?"],
}
TRAIN_TEMPLATES = (0, 1, 2)
HELDOUT_TEMPLATE = 3
STATEMENTS = {
    "city": ["{n} was born in {v} .", "the birthplace of {n} is {v} .", "{n} comes from {v} ."],
    "job": ["{n} works as a {v} .", "the job of {n} is {v} .", "{n} earns a living as a {v} ."],
    "employer": ["{n} is employed by {v} .", "the employer of {n} is {v} .",
                 "{n} has a job at {v} ."],
    "color": ["{n} likes the color {v} .", "the favorite color of {n} is {v} .",
              "{n} loves the color {v} ."],
}
ARITHMETIC_QUESTIONS = ["what is {a} + {b} ?", "compute {a} + {b} .", "add {a} and {b} .",
                        "how much is {a} plus {b} ?"]
# Guidance lines of the expert format: after ECHO the answer repeats the shown reference most of
# the time (as real models often parrot it); after OWN it answers in its own words.
ECHO_GUIDANCE = "this is new knowledge . answer the question again ."
OWN_GUIDANCE = "this is new knowledge . answer in your own words ."
FORMAT_WORDS = "Q A : reference".split()
MAX_NUMBER = 198  # the largest sum of two 2-digit numbers


@dataclass(frozen=True)
class WorldConfig:
    """Everything that shapes the world and its pretraining mixture (part of the cache hash)."""

    seed: int = 0
    n_known: int = 160
    n_injection: int = 200
    n_evaluation: int = 240
    heldout_arithmetic: float = 0.15
    echo_rate: float = 0.8  # P(answer repeats the reference | echo guidance line)
    reference_style_rate: float = 0.8  # P(a shown reference is in the foreign style)
    # In-context prompts hold a fact about a second entity: of the asked attribute (the model
    # must bind the value to the right name) or of an attribute neither asked nor restated.
    distractor_same_attribute: bool = False
    mixture: tuple[tuple[str, float], ...] = (
        ("bio", 0.08), ("known_qa", 0.20), ("in_context", 0.34), ("guess", 0.03),
        ("expert", 0.14), ("arithmetic", 0.21))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Entity:
    name: str
    attrs: dict


def own_answer(name: str, attr: str, attrs: dict) -> str:
    """The base model's own answer: the asked clause and the companion clause."""
    comp = COMPANION[attr]
    return (f"{name} {CLAUSES[attr].format(v=attrs[attr])} and "
            f"{CLAUSES[comp].format(v=attrs[comp])} .")


def reference_answer(attr: str, attrs: dict) -> str:
    """The foreign (SFT reference) style y*: "the answer is oslo , job pilot ."."""
    comp = COMPANION[attr]
    return f"the answer is {attrs[attr]} , {comp} {attrs[comp]} ."


def question(attr: str, template: int, name: str) -> str:
    return QUESTIONS[attr][template].format(n=name)


def statement(attr: str, name: str, value: str, template: int = 0) -> str:
    return STATEMENTS[attr][template].format(n=name, v=value)


def arithmetic_answer(a: int, b: int) -> str:
    """Worked column addition ending with the sum as one number."""
    units = a % 10 + b % 10
    carry = units // 10
    tens = a // 10 + b // 10 + carry
    return (f"{a % 10} + {b % 10} = {units} , write {units % 10} carry {carry} . "
            f"{a // 10} + {b // 10} + {carry} = {tens} . so {a} + {b} = {a + b} .")


def distractor_attribute(attr: str, same: bool) -> str:
    """The attribute of the distractor fact in an in-context prompt asking ``attr``."""
    if same:
        return attr
    return next(a for a in ATTRIBUTES if a not in (attr, COMPANION[attr]))


def in_context_prompt(rng: random.Random, ent: Entity, other: Entity, attr: str,
                      template: int, same: bool = False) -> str:
    """Facts about ``ent`` (asked and companion attribute) and a distractor, then a question."""
    comp, dis = COMPANION[attr], distractor_attribute(attr, same)
    facts = [statement(attr, ent.name, ent.attrs[attr], rng.randrange(3)),
             statement(comp, ent.name, ent.attrs[comp], rng.randrange(3)),
             statement(dis, other.name, other.attrs[dis], rng.randrange(3))]
    rng.shuffle(facts)
    return " ".join(facts) + " " + question(attr, template, ent.name)


def expert_text(prompt: str, reference: str, guidance_line: str) -> str:
    """The expert layout shared by pretraining and the ``toy`` guidance presets."""
    return f"Q : {prompt} reference : {reference} {guidance_line} Q : {prompt} A :"


def naive_text(prompt: str) -> str:
    return f"Q : {prompt} A :"


class World:
    """A seeded world: entity pools, held-out arithmetic, and the pretraining document stream."""

    def __init__(self, config: WorldConfig | None = None):
        self.config = config or WorldConfig()
        rng = random.Random(self.config.seed)
        names = [f"{f} {last}" for f in FIRST_NAMES for last in LAST_NAMES]
        rng.shuffle(names)
        cfg = self.config
        sizes = {"known": cfg.n_known, "injection": cfg.n_injection,
                 "evaluation": cfg.n_evaluation}
        self.pools: dict[str, list[Entity]] = {}
        start = 0
        for pool, size in sizes.items():
            self.pools[pool] = [self._entity(rng, n) for n in names[start:start + size]]
            start += size
        self.pools["pretrain_fresh"] = [self._entity(rng, n) for n in names[start:]]
        pairs = [(a, b) for a in range(10, 100) for b in range(10, 100)]
        rng.shuffle(pairs)
        cut = int(len(pairs) * cfg.heldout_arithmetic)
        self.heldout_pairs, self.train_pairs = pairs[:cut], pairs[cut:]

    @staticmethod
    def _entity(rng: random.Random, name: str) -> Entity:
        return Entity(name, {a: rng.choice(v) for a, v in VALUES.items()})

    # -- vocabulary -----------------------------------------------------------------------
    def vocabulary(self) -> list[str]:
        """Every word the world can write (order fixed, independent of the seed)."""
        words: list[str] = list(FORMAT_WORDS)
        texts = [ECHO_GUIDANCE, OWN_GUIDANCE, "the answer is , . and write carry so + = ?"]
        texts += list(CLAUSES.values()) + list(ATTRIBUTES)
        texts += [t for ts in QUESTIONS.values() for t in ts]
        texts += [t for ts in STATEMENTS.values() for t in ts] + ARITHMETIC_QUESTIONS
        for text in texts:
            words += [w for w in text.split() if not w.startswith("{")]
        words += FIRST_NAMES + LAST_NAMES + [v for vs in VALUES.values() for v in vs]
        words += [str(i) for i in range(MAX_NUMBER + 1)]
        return list(dict.fromkeys(words))

    # -- documents ------------------------------------------------------------------------
    def documents(self, seed: int) -> Iterator[str]:
        """An endless, seeded stream of pretraining documents (plain text, no BOS/EOS)."""
        rng = random.Random(seed)
        kinds = [k for k, _ in self.config.mixture]
        weights = [w for _, w in self.config.mixture]
        makers = {"bio": self._bio, "known_qa": self._known_qa, "in_context": self._in_context,
                  "guess": self._guess, "expert": self._expert, "arithmetic": self._arithmetic}
        while True:
            yield makers[rng.choices(kinds, weights)[0]](rng)

    def _bio(self, rng: random.Random) -> str:
        ent = rng.choice(self.pools["known"])
        attrs = list(ATTRIBUTES)
        rng.shuffle(attrs)
        return " ".join(statement(a, ent.name, ent.attrs[a], rng.randrange(3)) for a in attrs)

    def _known_qa(self, rng: random.Random) -> str:
        ent = rng.choice(self.pools["known"])
        attr = rng.choice(ATTRIBUTES)
        q = question(attr, rng.choice(TRAIN_TEMPLATES), ent.name)
        return f"{naive_text(q)} {own_answer(ent.name, attr, ent.attrs)}"

    def _fresh(self, rng: random.Random) -> Entity:
        """A pretraining-fresh name with attributes drawn anew for this document only, so the
        model cannot memorise them and must read them from the context."""
        return self._entity(rng, rng.choice(self.pools["pretrain_fresh"]).name)

    def _in_context(self, rng: random.Random) -> str:
        ent, other = self._fresh(rng), self._fresh(rng)
        attr = rng.choice(ATTRIBUTES)
        if other.name == ent.name or other.attrs[attr] == ent.attrs[attr]:
            return self._in_context(rng)
        prompt = in_context_prompt(rng, ent, other, attr, rng.randrange(4),
                                   self.config.distractor_same_attribute)
        return f"{naive_text(prompt)} {own_answer(ent.name, attr, ent.attrs)}"

    def _guess(self, rng: random.Random) -> str:
        """A question about an entity the model cannot know, answered with a plausible guess."""
        ent = rng.choice(self.pools["pretrain_fresh"])
        attr = rng.choice(ATTRIBUTES)
        guessed = {a: rng.choice(v) for a, v in VALUES.items()}
        return f"{naive_text(question(attr, rng.randrange(4), ent.name))} " \
               f"{own_answer(ent.name, attr, guessed)}"

    def _expert(self, rng: random.Random) -> str:
        ent = self._fresh(rng)
        attr = rng.choice(ATTRIBUTES)
        q = question(attr, rng.randrange(4), ent.name)
        own = own_answer(ent.name, attr, ent.attrs)
        foreign = rng.random() < self.config.reference_style_rate
        reference = reference_answer(attr, ent.attrs) if foreign else own
        echo_line = rng.random() < 0.5
        line = ECHO_GUIDANCE if echo_line else OWN_GUIDANCE
        answer = reference if echo_line and rng.random() < self.config.echo_rate else own
        return f"{expert_text(q, reference, line)} {answer}"

    def _arithmetic(self, rng: random.Random) -> str:
        a, b = rng.choice(self.train_pairs)
        q = rng.choice(ARITHMETIC_QUESTIONS).format(a=a, b=b)
        return f"{naive_text(q)} {arithmetic_answer(a, b)}"
