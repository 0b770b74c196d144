"""The KGFact world graph: novel entities in typed domains joined by typed relations.

Entity names are procedurally composed pseudo-words ("Thaelor Vixandru", "Skoumere",
"Drelva Consortium"), so no fact about them can be in any model's pretraining data
(docs/method.md, "Corpora"). Every relation is functional (one object per subject), so every
question has exactly one answer. A relation carries its question templates (the first
``TRAIN_TEMPLATES`` are used for training, the rest only for held-out paraphrases), a fact
statement (for retrieval and in-context splits) and a noun phrase that names its object
(for composing 2-hop questions: "the employer of X").
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mixsd.corpora.common import make_rng, pseudo_word

#: Domain order: ``--domains N`` uses the first N (small = 5, large = 7).
DOMAINS = ("person", "location", "organization", "profession", "product", "event",
           "media_work", "digital_tool")
TRAIN_TEMPLATES = 2

_ORG_KINDS = ("Institute", "Collective", "Works", "Consortium", "Guild", "Foundry",
              "Syndicate", "Laboratories", "Trust", "Cooperative")
_PLACE_ENDS = ("holm", "mere", "vale", "stead", "port", "gard", "ford", "wick", "dun", "moor")
_ROLES = ("binder", "surveyor", "tuner", "weaver", "assessor", "keeper", "warden", "chandler",
          "mason", "cartographer")
_GOODS = ("Lantern", "Kettle", "Loom", "Compass", "Stove", "Drone", "Bicycle", "Radio",
          "Telescope", "Harp")
_EVENTS = ("Festival", "Summit", "Regatta", "Expo", "Games", "Congress", "Symposium", "Fair")
_WORKS = ("Chronicles", "Tides", "Ledger", "Garden", "Winter", "Archive", "Hymn", "Voyage")
_TOOLS = ("Kit", "Flow", "Scope", "Forge", "Base", "Sync", "Lab", "Stack")


def _name(domain: str, rng: random.Random) -> str:
    if domain == "person":
        return f"{pseudo_word(rng, 2)} {pseudo_word(rng, 3)}"
    if domain == "location":
        return pseudo_word(rng, 2) + rng.choice(_PLACE_ENDS)
    if domain == "organization":
        return f"{pseudo_word(rng, 2)} {rng.choice(_ORG_KINDS)}"
    if domain == "profession":
        return f"{pseudo_word(rng, 2).lower()} {rng.choice(_ROLES)}"
    if domain == "product":
        return f"{pseudo_word(rng, 2)} {rng.choice(_GOODS)}"
    if domain == "event":
        return f"{pseudo_word(rng, 2)} {rng.choice(_EVENTS)}"
    if domain == "media_work":
        return f"The {pseudo_word(rng, 2)} {rng.choice(_WORKS)}"
    if domain == "digital_tool":
        return pseudo_word(rng, 2) + rng.choice(_TOOLS)
    raise ValueError(f"unknown domain {domain!r}")


def noun_phrase(domain: str, name: str) -> str:
    """How a question refers to an entity ("the zhaelix tuner profession", "the Vorla Summit")."""
    if domain == "profession":
        return f"the {name} profession"
    if domain in ("product", "event"):
        return f"the {name}"
    return name


def with_article(name: str) -> str:
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


@dataclass(frozen=True)
class Relation:
    """A typed directed relation ``subject_domain -name-> object_domain``."""

    name: str
    subject_domain: str
    object_domain: str
    questions: tuple[str, ...]  # "{s}" = the subject's noun phrase
    statement: str  # "{s}", "{o}", "{a_o}" (object with a/an)
    object_phrase: str  # a noun phrase for the object, "{s}" = the subject's noun phrase


RELATIONS: tuple[Relation, ...] = (
    Relation("born_in", "person", "location",
             ("Where was {s} born?", "In which place was {s} born?",
              "What is the birthplace of {s}?", "Which place is the birthplace of {s}?"),
             "{s} was born in {o}.", "the birthplace of {s}"),
    Relation("lives_in", "person", "location",
             ("Where does {s} live?", "In which place does {s} live?",
              "What is the home town of {s}?", "Which place does {s} call home?"),
             "{s} lives in {o}.", "the home town of {s}"),
    Relation("works_for", "person", "organization",
             ("Which organization does {s} work for?", "For which organization does {s} work?",
              "Who employs {s}?", "What is the employer of {s}?"),
             "{s} works for {o}.", "the employer of {s}"),
    Relation("has_profession", "person", "profession",
             ("What is the profession of {s}?", "What does {s} do for a living?",
              "Which profession does {s} practise?", "What job does {s} have?"),
             "{s} works as {a_o}.", "the profession of {s}"),
    Relation("mayor", "location", "person",
             ("Who is the mayor of {s}?", "Who serves as the mayor of {s}?",
              "Which person governs {s} as its mayor?", "Who holds the office of mayor in {s}?"),
             "The mayor of {s} is {o}.", "the mayor of {s}"),
    Relation("headquartered_in", "organization", "location",
             ("Where is {s} headquartered?", "In which place is {s} headquartered?",
              "Where are the headquarters of {s}?", "Which place hosts the headquarters of {s}?"),
             "{s} is headquartered in {o}.", "the headquarters location of {s}"),
    Relation("founded_by", "organization", "person",
             ("Who founded {s}?", "Who is the founder of {s}?", "By whom was {s} founded?",
              "Which person established {s}?"),
             "{s} was founded by {o}.", "the founder of {s}"),
    Relation("licensed_by", "profession", "organization",
             ("Which organization licenses {s}?", "Who issues the licences for {s}?",
              "Which body grants licences for {s}?", "Licences for {s} come from which organization?"),
             "Licences for {s} are issued by {o}.", "the licensing body of {s}"),
    Relation("made_by", "product", "organization",
             ("Which organization makes {s}?", "Who manufactures {s}?",
              "Which company produces {s}?", "Who is the maker of {s}?"),
             "{s} is made by {o}.", "the maker of {s}"),
    Relation("designed_by", "product", "person",
             ("Who designed {s}?", "Who is the designer of {s}?", "By whom was {s} designed?",
              "Which person came up with the design of {s}?"),
             "{s} was designed by {o}.", "the designer of {s}"),
    Relation("held_in", "event", "location",
             ("Where is {s} held?", "In which place is {s} held?", "Which place hosts {s}?",
              "Where does {s} take place?"),
             "{s} is held in {o}.", "the host location of {s}"),
    Relation("organized_by", "event", "organization",
             ("Which organization organizes {s}?", "Who organizes {s}?",
              "Who is the organizer of {s}?", "By which organization is {s} run?"),
             "{s} is organized by {o}.", "the organizer of {s}"),
    Relation("created_by", "media_work", "person",
             ("Who created {s}?", "Who is the author of {s}?", "By whom was {s} created?",
              "Which person wrote {s}?"),
             "{s} was created by {o}.", "the creator of {s}"),
    Relation("set_in", "media_work", "location",
             ("Where is {s} set?", "In which place is {s} set?", "What is the setting of {s}?",
              "Which place does {s} take place in?"),
             "{s} is set in {o}.", "the setting of {s}"),
    Relation("developed_by", "digital_tool", "organization",
             ("Which organization develops {s}?", "Who develops {s}?",
              "Who is the developer of {s}?", "By which organization is {s} developed?"),
             "{s} is developed by {o}.", "the developer of {s}"),
    Relation("used_by", "digital_tool", "profession",
             ("Which profession relies on {s}?", "Which profession mainly uses {s}?",
              "People of which profession are the main users of {s}?", "Members of which profession work with {s}?"),
             "{s} is mainly used by people who work as {a_o}.", "the main user profession of {s}"),
)


@dataclass(frozen=True)
class Entity:
    name: str
    domain: str

    @property
    def phrase(self) -> str:
        return noun_phrase(self.domain, self.name)


@dataclass(frozen=True)
class Fact:
    """``subject -relation-> object``, with a stable index in the world's fact list."""

    index: int
    subject: Entity
    relation: Relation
    object: Entity

    def statement(self) -> str:
        text = self.relation.statement.format(s=self.subject.phrase, o=self.object.name,
                                              a_o=with_article(self.object.name))
        return text[0].upper() + text[1:]

    def question(self, template: int, subject_phrase: str | None = None) -> str:
        phrase = self.subject.phrase if subject_phrase is None else subject_phrase
        text = self.relation.questions[template].format(s=phrase)
        return text[0].upper() + text[1:]


@dataclass
class World:
    """Entities per domain and the facts between them."""

    domains: tuple[str, ...]
    entities: dict[str, list[Entity]]
    facts: list[Fact]

    def to_dict(self) -> dict:
        return {
            "domains": list(self.domains),
            "entities": {d: [e.name for e in ents] for d, ents in self.entities.items()},
            "facts": [{"index": f.index, "subject": f.subject.name, "relation": f.relation.name,
                       "object": f.object.name} for f in self.facts],
        }


def build_world(n_domains: int, n_entities: int, seed: int) -> World:
    """A world of ``n_domains`` x ``n_entities`` novel entities and every applicable fact."""
    domains = DOMAINS[:n_domains]
    name_rng = make_rng(seed, "kgfact", "names")
    used: set[str] = set()
    entities: dict[str, list[Entity]] = {}
    for domain in domains:
        entities[domain] = []
        while len(entities[domain]) < n_entities:
            name = _name(domain, name_rng)
            core = name.split()[0].lower() if domain != "media_work" else name.split()[1].lower()
            if name.lower() in used or core in used:
                continue
            used.update({name.lower(), core})
            entities[domain].append(Entity(name, domain))
    facts: list[Fact] = []
    for relation in RELATIONS:
        if relation.subject_domain not in domains or relation.object_domain not in domains:
            continue
        rng = make_rng(seed, "kgfact", "relation", relation.name)
        pool = entities[relation.object_domain]
        same_domain = relation.subject_domain == relation.object_domain
        for position, subject in enumerate(entities[relation.subject_domain]):
            # uniform over the pool minus the subject itself (no self-loops)
            pick = rng.randrange(len(pool) - 1 if same_domain else len(pool))
            if same_domain and pick >= position:
                pick += 1
            facts.append(Fact(len(facts), subject, relation, pool[pick]))
    return World(domains, entities, facts)
