"""Contrast sentences threadguard writes itself, to teach intent rather than words (v0.6).

v0.5 judged words: it highlighted "Muslims" in "I love Muslims.", held people who quote
abuse to reject it, and approved plain threats. The real corpora have few sentences that
separate the word from the intent, so this module generates them from templates, each a
minimal contrast to another:

=====================  ==========================================================  =========
kind                   what it is                                                  labels
=====================  ==========================================================  =========
identity_neutral       an identity term in a neutral or friendly sentence          benign
identity_hate          hate toward a group; the group is swapped over every term   toxic
counter_speech         quoting or reporting abuse in order to reject it            benign
negated_hate           a hateful claim negated ("I don't think ... are dangerous") benign
negated_positive       hate said by negating something positive about a group      toxic
obfuscated_insult      an insult spelled to dodge a filter (leet, spaces, typos)   toxic
threat                 a plain threat to a person, composed from parts             threat
violence_mention       violence reported, idioms, fiction: no one is threatened    benign
=====================  ==========================================================  =========

Benign rows carry ``spans = []`` (annotated, with no toxic span): the span head learns that
an identity term alone is not a reason. Toxic rows leave spans unknown.

Every row's split is fixed by its *template* (a quarter of the templates are dev), so dev
measures whether the model generalises to sentences it never saw, not to new identity
terms in sentences it did. Generation is seeded: the same rows on every machine. The
sentences were written for this project; they are not taken from any published test suite
(``benchmarks/functional.py`` has its own, separate cases).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from training.corpora._common import Collector, hash_fraction

#: Share of the templates of each kind that go to dev.
DEV_SHARE = 0.25
SEED = 20261207

#: (plural noun phrase, adjective or singular form) of the identities the templates name.
GROUPS: tuple[tuple[str, str], ...] = (
    ("Muslims", "Muslim"), ("Jews", "Jewish"), ("Christians", "Christian"),
    ("Hindus", "Hindu"), ("Sikhs", "Sikh"), ("atheists", "atheist"),
    ("Catholics", "Catholic"), ("immigrants", "immigrant"), ("refugees", "refugee"),
    ("Black people", "Black"), ("white people", "white"), ("Asians", "Asian"),
    ("Latinos", "Latino"), ("Mexicans", "Mexican"), ("Arabs", "Arab"),
    ("Indigenous people", "Indigenous"), ("gay people", "gay"), ("lesbians", "lesbian"),
    ("trans people", "trans"), ("bisexual people", "bisexual"), ("women", "female"),
    ("men", "male"), ("disabled people", "disabled"), ("deaf people", "deaf"),
    ("old people", "elderly"), ("Chinese people", "Chinese"), ("Indians", "Indian"),
    ("Africans", "African"), ("Mormons", "Mormon"), ("Palestinians", "Palestinian"),
    ("Israelis", "Israeli"), ("Somalis", "Somali"),
)  # fmt: skip

#: Groups each identity template is filled with (a seeded sample of GROUPS).
GROUPS_PER_TEMPLATE = 12

_NONE = {
    "toxicity": 0.0,
    "severe_toxicity": 0.0,
    "insult": 0.0,
    "identity_attack": 0.0,
    "threat": 0.0,
    "obscene": 0.0,
}
_HATE = {"toxicity": 1.0, "identity_attack": 1.0, "threat": 0.0}
_INSULT = {"toxicity": 1.0, "insult": 1.0, "identity_attack": 0.0, "threat": 0.0}
_THREAT = {"toxicity": 1.0, "threat": 1.0, "severe_toxicity": 1.0, "identity_attack": 0.0}

# {g}: the plural group ("Muslims"); {a}: its adjective ("Muslim").
IDENTITY_NEUTRAL = (
    "I love {g}.",
    "{g} are people too, like everyone else.",
    "My best friend growing up was {a} and we still talk every week.",
    "The article quotes several {a} residents who support the new transit plan.",
    "As one of the {g} in this town, I found the council meeting useful.",
    "{g} have lived in this valley for generations.",
    "My neighbours are {a} and they helped us shovel the driveway all winter.",
    "The survey asked {g} what they thought of the hospital wait times.",
    "I'm {a} and I agree with the columnist about property taxes.",
    "There is a new community centre run by {a} volunteers on Main Street.",
    "Good to see {g} represented on the school board this year.",
    "The festival celebrated {a} food, music and history.",
    "{a} voters were split on the referendum, like everyone else.",
    "My daughter married a {a} man and we could not be happier.",
    "Many {g} work as nurses at the regional hospital.",
    "Being {a} has nothing to do with how you vote on the budget.",
    "The documentary followed three {a} families through a hard winter.",
    "Thank you for interviewing {g} and not just talking about them.",
    "I grew up around {g} and learned a lot from them.",
    "{g} deserve the same respect as anyone else.",
    "Our team hired two {a} engineers last month.",
    "The reporter should have asked {g} directly what they need.",
    "I'm proud to be {a}.",
    "Welcome to Canada, {a} families are part of this country.",
)
IDENTITY_HATE = (
    "{g} are vermin and should be driven out of this country.",
    "All {g} are criminals, every last one of them.",
    "{g} are a disease on this nation.",
    "I can't stand {g}, they ruin every neighbourhood they move into.",
    "{g} are subhuman trash.",
    "Never hire {g}, they are lazy parasites.",
    "{g} should not be allowed to vote, they are too stupid.",
    "The world would be better off without {g}.",
    "{a} people are filthy animals.",
    "Typical {a} scum, lying as always.",
    "{g} breed like rats.",
    "Get these {g} out of our schools, they poison everything.",
    "Honestly {g} are the worst thing that ever happened to this city.",
    "{g} are all terrorists at heart.",
    "Disgusting {a} freaks like these should stay hidden.",
    "Nobody wants {g} here, go back where you came from.",
)
COUNTER_SPEECH = (
    "Statements like '{g} are vermin' are hateful and have no place here.",
    "Someone at the rally shouted that {g} are animals. That is disgusting and wrong.",
    "If you say '{g} are all criminals', you are spreading a lie.",
    "I'm tired of seeing people call {g} parasites. Stop it.",
    "My {a} coworker was told to go back where she came from. Shameful.",
    "The post claiming {g} are a disease was reported and rightly removed.",
    "Calling {g} 'subhuman' is exactly the kind of hate this article warns about.",
    "Saying {g} should not vote is bigotry, plain and simple.",
    "No, {g} are not 'filthy'. Comments like that are why people leave this site.",
    "The graffiti said '{g} out'. I hope they catch whoever did it.",
    "People who write that {g} are trash should be ashamed of themselves.",
    "Quoting the senator: '{g} are a plague.' How is this acceptable in 2026?",
    "It is hurtful when people say {g} are all terrorists.",
    "Anyone who thinks {g} are lazy has never met one. That stereotype is ugly.",
    "The article documents threats against {g}; we should all condemn them.",
    "I reported the account that kept calling {g} rats.",
)
NEGATED_HATE = (
    "I don't hate {g}.",
    "It's not true that {g} are dangerous.",
    "{g} are not criminals, and the statistics show it.",
    "I would never say {g} are less intelligent than anyone else.",
    "Nobody should believe that {g} are a threat.",
    "I don't think {g} are the problem here at all.",
    "There is no evidence that {a} immigrants raise crime rates.",
    "{g} are not a burden on this country.",
    "No, {g} did not cause the housing crisis.",
    "I have never had a problem with {g}.",
    "It is wrong to say {g} can't be trusted.",
    "{g} are not lazy; many work two jobs.",
)
NEGATED_POSITIVE = (
    "{g} are not human beings in any sense that matters.",
    "I don't think {g} deserve any respect.",
    "{g} will never be real citizens of this country.",
    "No {a} person has ever contributed anything of value.",
    "{g} are not capable of honest work.",
    "I would never trust a {a} person with anything.",
    "{g} don't deserve to live among decent people.",
    "There is nothing good about {g}, nothing at all.",
    "{g} are not welcome here and never will be.",
    "I can't think of a single {a} person who isn't a liar.",
    "{g} have no right to raise children.",
    "Not one of these {g} belongs in our country.",
)

#: Insults aimed at a person, each spelled several ways by :func:`obfuscations`.
INSULTS = (
    "you are an idiot", "what a stupid moron", "you pathetic loser", "shut up you retard",
    "you are a worthless piece of shit", "go to hell you bastard", "you dumb bitch",
    "this author is an imbecile", "you absolute asshole", "what a fucking clown",
    "you are a disgusting pig", "shut your mouth you fool", "you brainless twit",
    "the writer is a complete jackass", "you ignorant dumbass", "you are scum",
    "stop posting you cretin", "you are such a dick", "you are a lying piece of crap",
    "you moronic troll",
)  # fmt: skip

#: Threats: who acts, what they will do, to whom, and when. Composed at random (seeded).
THREAT_OPENERS = (
    "I will",
    "I'm going to",
    "I am going to",
    "We will",
    "Someone should",
    "I swear I will",
    "Watch your back, I will",
    "You'd better hide, because I will",
    "One day I will",
    "Keep talking and I will",
)
THREAT_ACTS = (
    "find where you live and hurt you",
    "kill you",
    "beat you until you can't stand",
    "burn your house down",
    "put a bullet in your head",
    "break every bone in your body",
    "make you bleed",
    "slit your throat",
    "hunt you down",
    "shoot you",
    "come to your house and hurt your family",
    "strangle you",
    "stab you",
    "run you over with my truck",
    "end your miserable life",
)
THREAT_TAILS = ("", " tonight", " tomorrow", " when you least expect it", ", I promise",
                " and nobody will find you", " next time I see you")  # fmt: skip
VIOLENCE_MENTION = (
    "Police say the suspect threatened to kill his neighbour before the standoff.",
    "This heat is killing me.",
    "I would kill for a decent cup of coffee right now.",
    "The novel's villain swears he will burn the village down.",
    "The court heard that he had threatened to shoot his former partner.",
    "That comedian absolutely killed it last night.",
    "The documentary shows how the army burned villages during the war.",
    "My kids are going to murder me if I forget the snacks again.",
    "The report counts 40 people killed in traffic last year.",
    "Anyone who threatens a reporter should be prosecuted.",
    "The game lets you hunt dragons and burn their nests.",
    "He was sentenced for stabbing a man outside the bar in 2019.",
    "We will fight this zoning change at the next council meeting.",
    "The striker said they will destroy the other team on Saturday.",
    "Stop threatening people online; it's a crime.",
    "The mayor's plan will kill small businesses downtown.",
    "I'm going to beat my personal best at the marathon tomorrow.",
    "Doctors fought to keep the shooting victim alive.",
    "Our union will hit the company where it hurts: at the bargaining table.",
    "The article describes how the gang threatened witnesses.",
)

_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}


@dataclass(frozen=True)
class Template:
    """One template: its kind, its text and the labels every sentence from it gets."""

    kind: str
    text: str
    labels: dict[str, float]
    benign: bool

    @property
    def split(self) -> str:
        return "dev" if hash_fraction(self.text, salt="contrast") < DEV_SHARE else "train"


def obfuscations(text: str, rng: random.Random) -> list[str]:
    """The insult ``text`` spelled four ways a filter-dodger would: leetspeak, spaced
    letters in its longest word, a dropped letter, two swapped letters."""
    words = text.split()
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    word = words[longest]

    def with_word(new: str) -> str:
        return " ".join([*words[:longest], new, *words[longest + 1 :]])

    leet = "".join(_LEET.get(c, c) if rng.random() < 0.7 else c for c in word)
    spaced = " ".join(word)
    cut = rng.randrange(1, len(word) - 1)
    dropped = word[:cut] + word[cut + 1 :]
    swap = rng.randrange(1, len(word) - 2)
    swapped = word[:swap] + word[swap + 1] + word[swap] + word[swap + 2 :]
    return [with_word(w) for w in (leet, spaced, dropped, swapped)]


def templates() -> list[Template]:
    """Every template, in a fixed order."""
    out: list[Template] = []
    for kind, texts, labels, benign in (
        ("identity_neutral", IDENTITY_NEUTRAL, _NONE, True),
        ("identity_hate", IDENTITY_HATE, _HATE, False),
        ("counter_speech", COUNTER_SPEECH, _NONE, True),
        ("negated_hate", NEGATED_HATE, _NONE, True),
        ("negated_positive", NEGATED_POSITIVE, _HATE, False),
        ("violence_mention", VIOLENCE_MENTION, _NONE, True),
    ):
        out.extend(Template(kind, text, labels, benign) for text in texts)
    out.extend(Template("obfuscated_insult", text, _INSULT, False) for text in INSULTS)
    out.extend(Template("threat", f"{o} {{act}}", _THREAT, False) for o in THREAT_OPENERS)
    return out


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def generate(seed: int = SEED) -> Iterator[tuple[Template, str]]:
    """Every (template, sentence) pair, the same for the same seed."""
    rng = random.Random(seed)
    fillers: dict[str, Callable[[Template], list[str]]] = {
        "obfuscated_insult": lambda t: [t.text, *obfuscations(t.text, rng)],
        "threat": lambda t: [
            t.text.format(act=act) + rng.choice(THREAT_TAILS) + "."
            for act in rng.sample(THREAT_ACTS, 8)
        ],
        "violence_mention": lambda t: [t.text],
    }
    for template in templates():
        fill = fillers.get(template.kind)
        if fill is not None:
            for sentence in fill(template):
                yield template, _capitalise(sentence)
            continue
        for plural, adjective in rng.sample(GROUPS, GROUPS_PER_TEMPLATE):
            yield template, _capitalise(template.text.format(g=plural, a=adjective))


def load_contrast(folder: Path, out: Collector, *, seed: int = SEED) -> None:
    """Generate the contrast rows (``folder`` is unused: nothing is read from disk)."""
    seen: set[str] = set()
    for n, (template, text) in enumerate(generate(seed)):
        if text in seen:
            out.note("duplicate sentences dropped")
            continue
        seen.add(text)
        out.add(
            id=f"{template.kind}-{n}",
            split=template.split,
            group=template.kind,
            text=text,
            toxicity=template.labels,
            spans=[] if template.benign else None,
        )
