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
veiled_threat          a threat left unsaid ("I know where you live")              threat
veiled_twin            the same words where no one is threatened                   benign
harm_call              a call or wish for violence against a person                threat
harm_call_twin         the same callers asking for something harmless              benign
group_harm             a call for violence against a group                         threat
reported_threat        a threat quoted in order to report or reject it             benign
conditional_threat     a threat under a condition ("come near us again and ...")   threat
positive_twin          each negated_positive template said positively              benign
implicit_derogation    a group demeaned by stereotype or insinuation, no slur      toxic
derogation_twin        the same subject, said fairly                               benign
profanity              swearing that abuses no one                                 obscene
spam                   scams, link drops and advertising posted as comments        spam
spam_twin              comments about money, work or links that are not spam       benign
=====================  ==========================================================  =========

The kinds after ``violence_mention`` (v0.6.1, issue 41's second attempt) come in *minimal
pairs*: a twin shares its source's words and its split, so the model sees, in train and in
dev alike, the same words once with intent and once without.

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
_GROUP_THREAT = {"toxicity": 1.0, "threat": 1.0, "severe_toxicity": 1.0, "identity_attack": 1.0}
_PROFANE = {"obscene": 1.0, "insult": 0.0, "identity_attack": 0.0, "threat": 0.0}
_SPAM = {"spam": 1.0, **_NONE}

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

# ---- v0.6.1: minimal pairs. Each tuple is (source, twin): the twin keeps the source's words
# and its split (the pair is split by the source's text).

#: Threats that never name the act, each with a twin in which the same words harm no one.
VEILED_THREATS = (
    ("I know where you live.", "I know where you live: two streets from the new library."),
    (
        "You'd better watch your back from now on.",
        "You'd better watch your back on the ice, the sidewalks are glazed this morning.",
    ),
    (
        "It would be a shame if something happened to your kids.",
        "It would be a shame if the kids' playground closed for the whole summer.",
    ),
    ("Your days are numbered, pal.", "Your days of free parking downtown are numbered, pal."),
    (
        "Sleep with one eye open tonight.",
        "Sleep with the window open tonight, it's going to be warm.",
    ),
    ("You won't see it coming.", "You won't see the twist coming in the last chapter."),
    (
        "Nice house you have. Shame if it caught fire one night.",
        "Nice house you have. The fire inspector said the wiring is in great shape.",
    ),
    (
        "I have your address now, and I'm coming over.",
        "I have your address now, so I'll mail the signed petition over.",
    ),
    (
        "People who write articles like this tend to disappear.",
        "People who write articles like this tend to get invited on the radio.",
    ),
    (
        "Keep it up and you'll end up in a ditch somewhere.",
        "Keep driving like that in the snow and you'll end up in a ditch somewhere.",
    ),
    (
        "Say that to my face and see what happens to you.",
        "Say that to my face at the town hall and we can talk it through.",
    ),
    (
        "Remember my name, because I'll be the last thing you see.",
        "Remember my name, because I'll be running for council next year.",
    ),
    (
        "I'd start checking under my car if I were you.",
        "I'd start checking under my car for the cat if I were you; she hides there.",
    ),
    (
        "We know which school your daughter goes to.",
        "We know which school your daughter goes to; she won the spelling bee!",
    ),
    (
        "Enjoy your last weekend, reporter.",
        "Enjoy your last weekend before the election, reporter.",
    ),
    ("You're a dead man walking.", "You're a lucky man walking away from that crash."),
    (
        "Lock your doors tonight, I'm not done with you.",
        "Lock your doors tonight, there have been break-ins on our street.",
    ),
    (
        "Someone is going to make you pay for this, and soon.",
        "Someone is going to make you pay for this parking ticket, and soon.",
    ),
)

#: Calls for or wishes of violence against a person or a group (who acts is not the writer).
HARM_CALLERS = (
    "Someone needs to",
    "Somebody should",
    "I hope somebody comes and",
    "Wish someone would",
    "Honestly, people should",
    "I pray that someone will",
    "It's time for someone to",
)
HARM_ACTS_PERSON = (
    "shoot this journalist",
    "beat the author of this article senseless",
    "put the mayor six feet under",
    "break the commenter's legs",
    "hang that traitor",
    "burn down this editor's house",
    "run that cyclist off the road on purpose",
    "stab the guy who wrote this",
    "drag the senator into the street and beat him",
    "put a bullet in the columnist",
    "string up the judge",
    "torch the councillor's car",
)
#: What the same callers ask for when no one is to be hurt (harm_call's twins).
HARM_CALLER_TWIN_ACTS = (
    "fix the potholes on Main Street", "give this journalist an award",
    "check on the elderly neighbours during the storm", "fact-check the mayor's numbers",
    "take the senator's proposal seriously", "buy the columnist a coffee",
    "shoot a documentary about this town", "beat the mayor in the next election",
    "kill this awful bill in committee", "hang the new mural in the library",
)  # fmt: skip
#: Threats quoted to report or reject them, each filled with a THREAT_ACTS act: no one is
#: threatened by the writer (counter-speech about threats).
REPORTED_THREATS = (
    'He was arrested after yelling "I will {act}" at a cashier.',
    'Writing "I\'m going to {act}" to a reporter is a crime, and the court agreed.',
    'The troll who told her "I will {act}" has been banned. Good.',
    'If someone messages you "I will {act}", call the police.',
    "Nobody should have to read 'I will {act}' in their inbox because of an article.",
    "My sister got a note saying 'we will {act}'. The police are investigating.",
)
GROUP_HARM = (
    "{g} should all be lined up and shot.",
    "Round up the {g} and burn their homes.",
    "Every {a} in this town deserves a rope.",
    "Somebody should start killing {g} before they take over.",
    "I hope the {g} get what's coming to them, a bullet each.",
    "Time to wipe out the {g}, once and for all.",
    "Gas the {g}.",
    "If I see a {a} family on my street I'll beat them until they leave.",
)

#: Threats with a condition, each to be filled with a THREAT_ACTS act.
CONDITIONAL_THREATS = (
    "Come near my family again and I will {act}.",
    "One more article like this and I'll {act}.",
    "If you show up at the meeting, I will {act}.",
    "Post my name one more time and I'm going to {act}.",
    "Touch my fence again and I swear I'll {act}.",
    "If that bill passes, I will {act}.",
    "Write one more lie about my son and I'll {act}.",
    "Keep this up and one night I will {act}.",
    "Show your face in this town again and I'll {act}.",
    "If the paper prints my address, I swear I will {act}.",
    "Mess with my kids again and I'm going to {act}.",
)

#: Each negated_positive template, said positively: the same words, no hate.
POSITIVE_TWINS = {
    "{g} are not human beings in any sense that matters.": "{g} are human beings in every sense that matters.",
    "I don't think {g} deserve any respect.": "I think {g} deserve respect like anyone.",
    "{g} will never be real citizens of this country.": "{g} are real citizens of this country.",
    "No {a} person has ever contributed anything of value.": "{a} people have contributed a great deal of value here.",
    "{g} are not capable of honest work.": "{g} do honest work in every trade in this town.",
    "I would never trust a {a} person with anything.": "I would trust my {a} neighbour with anything.",
    "{g} don't deserve to live among decent people.": "{g} are decent people and good neighbours.",
    "There is nothing good about {g}, nothing at all.": "There is so much good about {g}, it's a shame the article missed it.",
    "{g} are not welcome here and never will be.": "{g} are welcome here, always.",
    "I can't think of a single {a} person who isn't a liar.": "I can't think of a single {a} person I know who isn't kind.",
    "{g} have no right to raise children.": "{g} have every right to raise children.",
    "Not one of these {g} belongs in our country.": "Every one of these {g} belongs in our country.",
}

#: Groups demeaned by stereotype, insinuation or "just asking", with no slur; each with a
#: twin that talks about the same thing fairly.
IMPLICIT_DEROGATION = (
    ("{g} always play the victim.", "{g} have been the victims of real discrimination here."),
    (
        "Funny how every neighbourhood gets worse once the {g} move in.",
        "Funny how every neighbourhood gets livelier once the new bakery moves in.",
    ),
    (
        "Let's be honest, {g} just aren't cut out for leadership.",
        "Let's be honest, {g} have led this city well for decades.",
    ),
    ("Of course the {a} guy was late again.", "Of course the bus was late again."),
    ("{g} only care about money, we all know it.", "{g} care about the same things we all do."),
    (
        "Another {a} doctor? I'd ask for a real one.",
        "Another {a} doctor joined the clinic, and the waiting list is finally shrinking.",
    ),
    (
        "{g} breed faster than we can build schools.",
        "Families of every background need more schools here.",
    ),
    (
        "Nothing against {g}, but they are simply less intelligent.",
        "Nothing against the plan, but the budget is simply too small.",
    ),
    (
        "{g} are fine as long as they stay in their own part of town.",
        "{g} live in every part of town, and the council should listen to them.",
    ),
    ("Why do {g} always need special treatment?", "Why do the buses always skip my stop?"),
    (
        "I'm not racist, but {g} bring crime wherever they go.",
        "The data shows {g} do not bring crime wherever they go.",
    ),
    ("{g} are a burden we carry for them.", "{g} pay the same taxes we all do."),
    ("You can always tell a {a} by the smell.", "You can always tell a good bakery by the smell."),
    ("{g} should be grateful we even let them in.", "{g} enrich this country and we are grateful."),
    ("Typical, another {a} on welfare.", "Typical, another pothole on Main Street."),
    (
        "{g} are basically children; they can't govern themselves.",
        "{g} govern their own communities, as they have for centuries.",
    ),
)

#: Swearing aimed at no one: a moderator's policy decides on it, not a judgement of intent.
PROFANITY = (
    "This fucking weather is killing my tomatoes.",
    "Holy shit, what a game last night.",
    "Damn it, the bridge is closed again.",
    "What the hell is going on with property taxes?",
    "Fuck, I forgot to vote early.",
    "That's some bullshit pricing on the new stadium.",
    "Shit happens, the council will fix it next year.",
    "Goddamn potholes on every street.",
    "This is a fucking great article, thank you.",
    "Crap, the ferry is cancelled again.",
    "Pissed that the library hours got cut.",
    "The traffic is a total shitshow today.",
    "Well, fuck me, the Leafs actually won.",
    "That budget is a goddamn mess.",
)

#: Spam posted as comments: offers, link drops, fake testimonials. {n} an amount.
SPAM = (
    "Make ${n} a week from your couch! Ask me how, link in my profile.",
    "I quit my job after finding this site: {site}. You can too.",
    "Great article. Visit {site} for the cheapest replica watches online.",
    "My aunt earns ${n} monthly doing simple online tasks. Check {site}",
    "Crypto doubled my savings in 3 days!!! DM me for the secret strategy.",
    "FREE iPhone giveaway, just enter your details at {site}",
    "Lose 20 pounds in 2 weeks with this one trick: {site}",
    "Hot singles in your area are waiting: {site}",
    "Need a loan fast? No credit check, approval in minutes at {site}",
    "Buy followers and likes cheap, instant delivery, {site}",
    "I make ${n} per hour working online from home. Start here: {site}",
    "Best essay writing service, 50% off today only at {site}",
    "Click here to claim your prize: {site}",
    "Investment opportunity: guaranteed {n}% returns, message me now.",
)
SPAM_SITES = ("www.easy-cash-now.biz", "bit.ly/3xYz9Q", "homejobs4u.net", "tinyurl.com/win-big",
              "best-deals-online.shop", "www.earnfast.club")  # fmt: skip
SPAM_AMOUNTS = ("500", "8,000", "97", "300", "12,450", "85")
#: Comments about money, work, links or offers that are not spam.
SPAM_TWINS = (
    "I've worked from home for three years and honestly earn less than at the office.",
    "The article's link to the budget documents is broken, can the editors fix it?",
    "The city's own site has the full report: search for the 2026 transit plan.",
    "My aunt lost $8,000 to an online 'investment' like the ones described here.",
    "Crypto scams like this one are why I tell my parents to never click links in emails.",
    "A free tax clinic runs at the library every Saturday, worth knowing about.",
    "Anyone know whether the new jobs at the plant pay more than $20 an hour?",
    "I'd like to see the paper cover payday loans; they trap people here.",
    "The giveaway in the story was a scam; the police say never enter your details.",
    "Great article. I shared it with my book club.",
)

_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}


@dataclass(frozen=True)
class Template:
    """One template: its kind, its text and the labels every sentence from it gets."""

    kind: str
    text: str
    labels: dict[str, float]
    benign: bool
    #: The source template of a twin: a minimal pair shares its source's split.
    pair: str = ""

    @property
    def split(self) -> str:
        key = self.pair or self.text
        return "dev" if hash_fraction(key, salt="contrast") < DEV_SHARE else "train"


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
    # v0.6.1: minimal pairs and the kinds v0.6 had no data for
    for source, twin in VEILED_THREATS:
        out.append(Template("veiled_threat", source, _THREAT, False))
        out.append(Template("veiled_twin", twin, _NONE, True, pair=source))
    out.extend(Template("harm_call", f"{c} {{act}}", _THREAT, False) for c in HARM_CALLERS)
    out.extend(
        Template("harm_call_twin", f"{c} {{act}}", _NONE, True, pair=f"{c} {{act}}")
        for c in HARM_CALLERS
    )
    out.extend(Template("group_harm", text, _GROUP_THREAT, False) for text in GROUP_HARM)
    out.extend(Template("reported_threat", t, _NONE, True) for t in REPORTED_THREATS)
    out.extend(Template("conditional_threat", t, _THREAT, False) for t in CONDITIONAL_THREATS)
    out.extend(
        Template("positive_twin", twin, _NONE, True, pair=source)
        for source, twin in POSITIVE_TWINS.items()
    )
    for source, twin in IMPLICIT_DEROGATION:
        out.append(Template("implicit_derogation", source, _HATE, False))
        out.append(Template("derogation_twin", twin, _NONE, True, pair=source))
    out.extend(Template("profanity", text, _PROFANE, False) for text in PROFANITY)
    # spam has no toxic span: ``benign`` (spans = []) holds for it
    out.extend(Template("spam", text, _SPAM, True) for text in SPAM)
    out.extend(Template("spam_twin", text, _NONE, True) for text in SPAM_TWINS)
    return out


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _as_written(template: Template) -> list[str]:
    return [template.text]


def generate(seed: int = SEED) -> Iterator[tuple[Template, str]]:
    """Every (template, sentence) pair, the same for the same seed."""
    rng = random.Random(seed)
    fillers: dict[str, Callable[[Template], list[str]]] = {
        "obfuscated_insult": lambda t: [t.text, *obfuscations(t.text, rng)],
        "threat": lambda t: [
            t.text.format(act=act) + rng.choice(THREAT_TAILS) + "."
            for act in rng.sample(THREAT_ACTS, 8)
        ],
        "harm_call": lambda t: [
            t.text.format(act=act) + "." for act in rng.sample(HARM_ACTS_PERSON, 6)
        ],
        "harm_call_twin": lambda t: [
            t.text.format(act=act) + "." for act in rng.sample(HARM_CALLER_TWIN_ACTS, 4)
        ],
        "reported_threat": lambda t: [t.text.format(act=act) for act in rng.sample(THREAT_ACTS, 6)],
        "conditional_threat": lambda t: [
            t.text.format(act=act) for act in rng.sample(THREAT_ACTS, 6)
        ],
        "spam": lambda t: [
            t.text.format(site=rng.choice(SPAM_SITES), n=rng.choice(SPAM_AMOUNTS)) for _ in range(3)
        ],
    }
    for template in templates():
        fill = fillers.get(template.kind)
        if fill is None and "{g}" not in template.text and "{a}" not in template.text:
            fill = _as_written  # a template with no slot to fill: its sentence, once
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
