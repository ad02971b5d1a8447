"""Who speaks the synthesized keyword set: the voices, the people behind them, and how each says a word.

golden/DATA.md documents these tables; golden/dataset.py synthesizes and augments with them.

Three groups of voices:
- "english": the 4 recorded English speakers of Debian's flite and festival (kal, slt, awb, rms);
- "foreign": Debian's non-English festival voices, 11 more recorded people (Czech, Catalan, Russian,
  Finnish, Italian, Hindi), each speaking the English words through a respelling for its own
  letter-to-sound rules (RESPELLINGS below, vetted with the pocketsphinx judge, golden/intelligibility.py);
- "formant": espeak-ng's English accents (formant synthesis), one speaker id per accent.

A voice's share of a split's speech clips is its group's share (GROUP_SHARE) times its weight within the
group, the weight being its measured intelligibility (INTELLIGIBILITY, from the judge) when that is at
least INTELLIGIBILITY_FLOOR, and 0 below it (the voice is dropped).
"""

from dataclasses import dataclass, field

from .errors import UserError
from .labels import KEYWORDS

# `unknown`: the 20 other words of Google Speech Commands v1, the 5 words v2 added, and a few more.
GSC_OTHER_WORDS = ("bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin",
                   "nine", "one", "seven", "sheila", "six", "three", "tree", "two", "wow", "zero")
GSC_V2_EXTRA_WORDS = ("backward", "forward", "follow", "learn", "visual")
EXTRA_UNKNOWN_WORDS = ("hello", "okay", "music", "light", "water", "today", "number", "please",
                       "again", "under", "open", "yellow", "window", "apple", "money")
UNKNOWN_WORDS = GSC_OTHER_WORDS + GSC_V2_EXTRA_WORDS + EXTRA_UNKNOWN_WORDS
WORDS = KEYWORDS + UNKNOWN_WORDS

# Reserved as an independent evaluation set (TOOLCHAIN.md): never synthesized here.
RESERVED_VOICES = ("ked_diphone",)


@dataclass(frozen=True)
class Voice:
    """One synthesizer voice. `name` goes to the manifest's `voice` column."""
    engine: str      # flite | festival | espeak
    ident: str       # the engine's own voice name (festival: the part after `voice_`)
    speaker: str     # the human (or accent) behind it: the unit of the speaker-held-out split
    group: str       # "english" | "foreign" (recorded people) | "formant" (espeak-ng)
    lang: str = "en"                     # RESPELLINGS key for foreign voices
    encoding: str = "ascii"              # festival: the encoding its script must be written in
    trim_db: float = -40.0               # silence trimming floor below the loudest frame
    punctuation: tuple = field(default=(".", "!", "?"), compare=False)   # final marks it accepts
    stretches: tuple = field(default=(0.9, 1.0, 1.15), compare=False)    # duration stretches it honours

    @property
    def name(self):
        return f"{self.engine}:{self.ident}"

    @property
    def recorded(self):
        return self.group in ("english", "foreign")

    def text(self, word):
        """What the synthesizer is given for the English `word`."""
        if self.group != "foreign":
            return word
        return OVERRIDES.get(self.ident, {}).get(word) or RESPELLINGS[self.lang][word]


# English recorded voices: 4 people. flite kal/kal16 and festival kal_diphone are one speaker (kal),
# flite slt and festival's slt HTS voice another (slt).
ENGLISH_VOICES = (
    Voice("flite", "kal", "kal", "english"),
    Voice("flite", "kal16", "kal", "english"),
    Voice("flite", "awb", "awb", "english"),
    Voice("flite", "rms", "rms", "english"),
    Voice("flite", "slt", "slt", "english"),
    Voice("festival", "kal_diphone", "kal", "english"),
    Voice("festival", "cmu_us_slt_arctic_hts", "slt", "english"),
)

# Debian's non-English festival voices (/work/shared/VOICES.md): 11 people. Hindi, Marathi and Telugu
# NSK are one speaker (one unit file): Hindi only. NSK crashes festival on Latin text (so no final
# punctuation either) and its words are followed by noise only ~20 dB down: trimmed at -14 dB. The
# Russian clunits voice ignores Duration_Stretch (one stretch; sox varies the tempo).
FOREIGN_VOICES = (
    Voice("festival", "czech_dita", "cs-dita", "foreign", "cs", "iso-8859-2"),
    Voice("festival", "czech_krb", "cs-krb", "foreign", "cs", "iso-8859-2"),
    Voice("festival", "czech_machac", "cs-machac", "foreign", "cs", "iso-8859-2"),
    Voice("festival", "czech_ph", "cs-ph", "foreign", "cs", "iso-8859-2"),
    Voice("festival", "upc_ca_ona_hts", "ca-ona", "foreign", "ca", "iso-8859-15"),
    Voice("festival", "msu_ru_nsh_clunits", "ru-nsh", "foreign", "ru", "utf-8", stretches=(1.0,)),
    Voice("festival", "suo_fi_lj_diphone", "fi-lj", "foreign", "fi", "iso-8859-1"),
    Voice("festival", "hy_fi_mv_diphone", "fi-mv", "foreign", "fi", "iso-8859-1"),
    Voice("festival", "lp_diphone", "it-lp", "foreign", "it", "iso-8859-1"),
    Voice("festival", "pc_diphone", "it-pc", "foreign", "it", "iso-8859-1"),
    Voice("festival", "hindi_NSK_diphone", "hi-nsk", "foreign", "hi", "utf-8", -14.0, ("",)),
)

# Debian package of each festival voice (named when one is missing).
FESTIVAL_PACKAGES = {
    "kal_diphone": "festvox-kallpc16k",
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
    "czech_dita": "festival-czech festvox-czech-dita",
    "czech_krb": "festival-czech festvox-czech-krb",
    "czech_machac": "festival-czech festvox-czech-machac",
    "czech_ph": "festival-czech festvox-czech-ph",
    "upc_ca_ona_hts": "festival-ca festvox-ca-ona-hts",
    "msu_ru_nsh_clunits": "festvox-ru",
    "suo_fi_lj_diphone": "festvox-suopuhe-common festvox-suopuhe-lj",
    "hy_fi_mv_diphone": "festvox-suopuhe-common festvox-suopuhe-mv",
    "lp_diphone": "festlex-ifd festvox-italp16k",
    "pc_diphone": "festlex-ifd festvox-itapc16k",
    "hindi_NSK_diphone": "festival-hi festvox-hi-nsk",
}
FOREIGN_PACKAGES = ("festival-czech festival-ca festival-hi festlex-ifd festvox-italp16k festvox-itapc16k "
                    "festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph festvox-ru "
                    "festvox-suopuhe-common festvox-suopuhe-lj festvox-suopuhe-mv festvox-ca-ona-hts "
                    "festvox-hi-nsk")

# espeak-ng: 8 English accents x 11 variants. Only the plain male/female variants (no whisper, croak,
# robot or novelty variants), and not the Klatt ones: Debian 12's espeak-ng 1.51 reads past the end of
# a buffer in its Klatt synthesizer (sampled_source: samples[itemp + 1]; SetSynth_Klatt: klattp[5..]),
# fixed upstream in 1.52 (commits adc6855c, 98dc5c67), so a klatt clip could differ from run to run.
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-x-gbclan",
                  "en-us-nyc", "en-gb-x-gbcwmd", "en-gb-scotland", "en-029")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4")
ESPEAK_VOICES = tuple(Voice("espeak", f"{a}+{v}", f"espeak-{a}", "formant")
                      for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS)

ALL_VOICES = ENGLISH_VOICES + FOREIGN_VOICES + ESPEAK_VOICES
VOICE_BY_NAME = {v.name: v for v in ALL_VOICES}


# ------------------------------------------------------------------------------------------ respellings
# The English words spelled for each language's letter-to-sound rules (starting points from VOICES.md,
# then corrected word by word where the judge, golden/intelligibility.py, heard another keyword).
# Each table holds every word of WORDS; OVERRIDES holds the respellings of a single voice. Every
# respelling is synthesized in every base variant by a slow test (festival crashed, exit -11, on the
# Italian voices' "for?" at stretch 1.15: Italian "four" is "fòr").

RESPELLINGS = {
    "cs": {  # Czech (ISO-8859-2): j = y, c = ts, š = sh, ž = zh, ch = kh, ou/au/aj/ej diphthongs
        "yes": "jes", "no": "nou", "up": "áp", "down": "daaun", "left": "left", "right": "rajt",
        "on": "on", "off": "óf", "stop": "stop", "go": "gou",
        "bed": "bed", "bird": "bérd", "cat": "ket", "dog": "dog", "eight": "ejt", "five": "fajv",
        "four": "fór", "happy": "hepy", "house": "haus", "marvin": "márvin", "nine": "najn",
        "one": "van", "seven": "sevn", "sheila": "šíla", "six": "siks", "three": "frí", "tree": "trí",
        "two": "tů", "wow": "vau", "zero": "zírou", "backward": "bekvrd", "forward": "fórvrd",
        "follow": "folou", "learn": "lérn", "visual": "vižuel", "hello": "helou", "okay": "oukej",
        "music": "mjúzik", "light": "lajt", "water": "vótr", "today": "tudej", "number": "nambr",
        "please": "plíz", "again": "egen", "under": "andr", "open": "oupn", "yellow": "jelou",
        "window": "vindou", "apple": "epl", "money": "many",
    },
    "ca": {  # Catalan (ISO-8859-15): accents mark the stress (unstressed a/e are reduced), x = sh,
             # qu = k, gu = g, j/g(e,i) = zh, h silent
        "yes": "iés", "no": "nou", "up": "ap", "down": "dàun", "left": "left", "right": "ràit",
        "on": "on", "off": "ófa", "stop": "stop", "go": "gou",
        "bed": "bed", "bird": "bèrd", "cat": "quet", "dog": "dog", "eight": "éit", "five": "fàiv",
        "four": "fòr", "happy": "èpi", "house": "àus", "marvin": "màrvin", "nine": "nàin",
        "one": "uàn", "seven": "séven", "sheila": "xila", "six": "sics", "three": "fri", "tree": "tri",
        "two": "tu", "wow": "uau", "zero": "zírou", "backward": "bècuord", "forward": "fòruord",
        "follow": "fólou", "learn": "lern", "visual": "vísual", "hello": "elóu", "okay": "oukéi",
        "music": "miúzic", "light": "làit", "water": "uóter", "today": "tudéi", "number": "námber",
        "please": "plis", "again": "eguén", "under": "ànder", "open": "óupen", "yellow": "iélou",
        "window": "uíndou", "apple": "èpol", "money": "máni",
    },
    "ru": {  # Russian (UTF-8, Cyrillic)
        "yes": "йес", "no": "ноу", "up": "ап", "down": "даун", "left": "лефт", "right": "райт",
        "on": "он", "off": "офф", "stop": "стоп", "go": "гоу",
        "bed": "бэд", "bird": "бёрд", "cat": "кэт", "dog": "дог", "eight": "эйт", "five": "файв",
        "four": "фор", "happy": "хэппи", "house": "хаус", "marvin": "марвин", "nine": "найн",
        "one": "уан", "seven": "сэвэн", "sheila": "шила", "six": "сикс", "three": "фри", "tree": "три",
        "two": "ту", "wow": "вау", "zero": "зироу", "backward": "бэкворд", "forward": "форворд",
        "follow": "фолоу", "learn": "лёрн", "visual": "вижуал", "hello": "хэлоу", "okay": "оукей",
        "music": "мьюзик", "light": "лайт", "water": "уотер", "today": "тудэй", "number": "намбер",
        "please": "плиз", "again": "эгэн", "under": "андер", "open": "оупен", "yellow": "йелоу",
        "window": "уиндоу", "apple": "эпл", "money": "мани",
    },
    "fi": {  # Finnish (ISO-8859-1): spelled as said, doubled letters long, j = y, ä = the vowel of "cat"
        "yes": "jes", "no": "nou", "up": "ap", "down": "daun", "left": "left", "right": "rait",
        "on": "oon", "off": "of", "stop": "stop", "go": "gou",
        "bed": "bed", "bird": "böörd", "cat": "kät", "dog": "dog", "eight": "eit", "five": "faiv",
        "four": "foor", "happy": "häppi", "house": "haus", "marvin": "maarvin", "nine": "nain",
        "one": "van", "seven": "seven", "sheila": "siila", "six": "siks", "three": "frii",
        "tree": "trii", "two": "tuu", "wow": "vau", "zero": "siirou", "backward": "bäkvörd",
        "forward": "foorvörd", "follow": "falou", "learn": "löörn", "visual": "visuaal",
        "hello": "helou", "okay": "oukei", "music": "mjuusik", "light": "lait", "water": "vooter",
        "today": "tudei", "number": "namber", "please": "pliis", "again": "egen", "under": "ander",
        "open": "oupen", "yellow": "jelou", "window": "vindou", "apple": "äppel", "money": "mani",
    },
    "it": {  # Italian (ISO-8859-1): ch = k, c(e,i) = ch, sc(i) = sh, gh = g, h silent
        "yes": "ies", "no": "nou", "up": "ap", "down": "dàun", "left": "left", "right": "ràit",
        "on": "on", "off": "of", "stop": "stop", "go": "gou",
        "bed": "bed", "bird": "berd", "cat": "chet", "dog": "dog", "eight": "eit", "five": "faiv",
        "four": "fòr", "happy": "eppi", "house": "aus", "marvin": "marvin", "nine": "nain",
        "one": "uan", "seven": "seven", "sheila": "scila", "six": "sics", "three": "frii",
        "tree": "trii", "two": "tu", "wow": "uau", "zero": "ziro", "backward": "bechuord",
        "forward": "foruord", "follow": "folou", "learn": "lern", "visual": "visual",
        "hello": "ellou", "okay": "ochei", "music": "miusic", "light": "lait", "water": "uoter",
        "today": "tudei", "number": "namber", "please": "pliis", "again": "eghen", "under": "ander",
        "open": "oupen", "yellow": "ielou", "window": "uindou", "apple": "eppol", "money": "mani",
    },
    "hi": {  # Hindi (UTF-8, Devanagari; no nukta: NSK crashes on "ऑफ़")
        "yes": "येस", "no": "नौ", "up": "अप", "down": "डाउन", "left": "लेफ्ट", "right": "रायट",
        "on": "ऑन", "off": "ऑफ", "stop": "स्टॉप", "go": "गोऊ",
        "bed": "बेड", "bird": "बर्ड", "cat": "कैट", "dog": "डॉग", "eight": "एट", "five": "फाइव",
        "four": "फोर", "happy": "हैपी", "house": "हाउस", "marvin": "मार्विन", "nine": "नाइन",
        "one": "वन", "seven": "सेवन", "sheila": "शीला", "six": "सिक्स", "three": "थ्री", "tree": "ट्री",
        "two": "टू", "wow": "वाउ", "zero": "जीरो", "backward": "बैकवर्ड", "forward": "फॉरवर्ड",
        "follow": "फॉलो", "learn": "लर्न", "visual": "विजुअल", "hello": "हेलो", "okay": "ओके",
        "music": "म्यूजिक", "light": "लाइट", "water": "वॉटर", "today": "टुडे", "number": "नंबर",
        "please": "प्लीज", "again": "अगेन", "under": "अंडर", "open": "ओपन", "yellow": "येलो",
        "window": "विंडो", "apple": "ऐपल", "money": "मनी",
    },
}

# Respellings of one voice where its language's table fails the judge for it (and the override
# passes: e.g. czech_ph heard "daaun" as "no" 14 times in 18, "dáon" as "down" 18 times).
OVERRIDES = {
    "czech_ph": {"down": "dáon"},
    "czech_krb": {"left": "léft", "go": "góu"},
    "hy_fi_mv_diphone": {"down": "daaun"},
    "pc_diphone": {"stop": "stap", "go": "go"},
}


# -------------------------------------------------------------------------------- splits and weights

# Speaker-held-out splits: every speaker belongs to exactly one split. val and test each get one English
# recorded speaker, two foreign recorded people (a woman and a man) and two espeak-ng accents.
SPLIT_OF_SPEAKER = {
    "kal": "train", "slt": "train", "awb": "val", "rms": "test",
    "cs-ph": "train", "cs-krb": "train", "fi-lj": "train", "ru-nsh": "train", "it-lp": "train",
    "it-pc": "train", "hi-nsk": "train",
    "cs-dita": "val", "fi-mv": "val",
    "ca-ona": "test", "cs-machac": "test",
    "espeak-en-us": "train", "espeak-en-gb": "train", "espeak-en-gb-x-rp": "train",
    "espeak-en-gb-x-gbclan": "train",
    "espeak-en-gb-scotland": "val", "espeak-en-029": "val",
    "espeak-en-us-nyc": "test", "espeak-en-gb-x-gbcwmd": "test",
}

# Speaker folds for cross-validation (`ternkws dataset --fold K`): three disjoint groups of five
# held-out speakers, each one English recorded person, two foreign recorded people (a woman and a man)
# and two espeak-ng accents. Fold k holds out (val, test) = FOLDS[k]; every other speaker is train.
# Fold 0 is SPLIT_OF_SPEAKER (group B val, group A test); over the three folds every group is the test
# split once, so a recipe's cross-validated figure is heard on 15 of the 23 speakers.
HELD_OUT_GROUPS = {
    "A": ("rms", "ca-ona", "cs-machac", "espeak-en-us-nyc", "espeak-en-gb-x-gbcwmd"),
    "B": ("awb", "cs-dita", "fi-mv", "espeak-en-gb-scotland", "espeak-en-029"),
    "C": ("slt", "fi-lj", "cs-ph", "espeak-en-us", "espeak-en-gb-x-rp"),
}
FOLDS = {0: ("B", "A"), 1: ("C", "B"), 2: ("A", "C")}


def split_of_speaker(fold=0):
    """{speaker: split} of speaker fold `fold` (0 is SPLIT_OF_SPEAKER); UserError for an unknown fold."""
    if fold not in FOLDS:
        raise UserError(f"--fold must be one of {', '.join(map(str, FOLDS))} (got {fold})")
    val, test = FOLDS[fold]
    splits = {s: "train" for s in SPLIT_OF_SPEAKER}
    splits.update({s: "val" for s in HELD_OUT_GROUPS[val]})
    splits.update({s: "test" for s in HELD_OUT_GROUPS[test]})
    return splits


# Share of each split's speech clips per group (renormalized over the groups a split has).
GROUP_SHARE = {"english": 0.35, "foreign": 0.35, "formant": 0.30}

# Intelligibility of each voice: the judge's forced-choice keyword accuracy on clean base utterances
# (golden/intelligibility.py; golden/DATA.md has the table and the command). A voice below the floor
# is not used; the others are weighted by their score within their group.
INTELLIGIBILITY_FLOOR = 0.5
INTELLIGIBILITY = {
    "flite:kal": 0.77,
    "flite:kal16": 0.95,
    "flite:awb": 0.97,
    "flite:rms": 0.93,
    "flite:slt": 0.92,
    "festival:kal_diphone": 0.96,
    "festival:cmu_us_slt_arctic_hts": 0.93,
    "festival:czech_dita": 0.99,
    "festival:czech_krb": 0.89,
    "festival:czech_machac": 0.90,
    "festival:czech_ph": 0.96,
    "festival:upc_ca_ona_hts": 0.92,
    "festival:msu_ru_nsh_clunits": 0.85,
    "festival:suo_fi_lj_diphone": 0.95,
    "festival:hy_fi_mv_diphone": 0.82,
    "festival:lp_diphone": 0.74,
    "festival:pc_diphone": 0.82,
    "festival:hindi_NSK_diphone": 0.55,
    "espeak:en-us+m1": 0.70, "espeak:en-us+m2": 0.55, "espeak:en-us+m3": 0.65, "espeak:en-us+m4": 0.60,
    "espeak:en-us+m5": 0.65, "espeak:en-us+m6": 0.75, "espeak:en-us+m7": 0.60, "espeak:en-us+f1": 0.80,
    "espeak:en-us+f2": 0.75, "espeak:en-us+f3": 0.65, "espeak:en-us+f4": 0.50,
    "espeak:en-gb+m1": 0.75, "espeak:en-gb+m2": 0.65, "espeak:en-gb+m3": 0.65, "espeak:en-gb+m4": 0.75,
    "espeak:en-gb+m5": 0.65, "espeak:en-gb+m6": 0.80, "espeak:en-gb+m7": 0.65, "espeak:en-gb+f1": 0.65,
    "espeak:en-gb+f2": 0.70, "espeak:en-gb+f3": 0.75, "espeak:en-gb+f4": 0.65,
    "espeak:en-gb-x-rp+m1": 0.80, "espeak:en-gb-x-rp+m2": 0.55, "espeak:en-gb-x-rp+m3": 0.85,
    "espeak:en-gb-x-rp+m4": 0.70, "espeak:en-gb-x-rp+m5": 0.85, "espeak:en-gb-x-rp+m6": 0.85,
    "espeak:en-gb-x-rp+m7": 0.70, "espeak:en-gb-x-rp+f1": 0.75, "espeak:en-gb-x-rp+f2": 0.85,
    "espeak:en-gb-x-rp+f3": 0.60, "espeak:en-gb-x-rp+f4": 0.50,
    "espeak:en-gb-x-gbclan+m1": 0.65, "espeak:en-gb-x-gbclan+m2": 0.45, "espeak:en-gb-x-gbclan+m3": 0.65,
    "espeak:en-gb-x-gbclan+m4": 0.65, "espeak:en-gb-x-gbclan+m5": 0.60, "espeak:en-gb-x-gbclan+m6": 0.60,
    "espeak:en-gb-x-gbclan+m7": 0.60, "espeak:en-gb-x-gbclan+f1": 0.45, "espeak:en-gb-x-gbclan+f2": 0.65,
    "espeak:en-gb-x-gbclan+f3": 0.45, "espeak:en-gb-x-gbclan+f4": 0.40,
    "espeak:en-us-nyc+m1": 0.70, "espeak:en-us-nyc+m2": 0.45, "espeak:en-us-nyc+m3": 0.65,
    "espeak:en-us-nyc+m4": 0.60, "espeak:en-us-nyc+m5": 0.65, "espeak:en-us-nyc+m6": 0.65,
    "espeak:en-us-nyc+m7": 0.60, "espeak:en-us-nyc+f1": 0.70, "espeak:en-us-nyc+f2": 0.80,
    "espeak:en-us-nyc+f3": 0.65, "espeak:en-us-nyc+f4": 0.40,
    "espeak:en-gb-x-gbcwmd+m1": 0.60, "espeak:en-gb-x-gbcwmd+m2": 0.40, "espeak:en-gb-x-gbcwmd+m3": 0.60,
    "espeak:en-gb-x-gbcwmd+m4": 0.55, "espeak:en-gb-x-gbcwmd+m5": 0.60, "espeak:en-gb-x-gbcwmd+m6": 0.60,
    "espeak:en-gb-x-gbcwmd+m7": 0.45, "espeak:en-gb-x-gbcwmd+f1": 0.50, "espeak:en-gb-x-gbcwmd+f2": 0.65,
    "espeak:en-gb-x-gbcwmd+f3": 0.45, "espeak:en-gb-x-gbcwmd+f4": 0.35,
    "espeak:en-gb-scotland+m1": 0.65, "espeak:en-gb-scotland+m2": 0.45, "espeak:en-gb-scotland+m3": 0.60,
    "espeak:en-gb-scotland+m4": 0.65, "espeak:en-gb-scotland+m5": 0.75, "espeak:en-gb-scotland+m6": 0.70,
    "espeak:en-gb-scotland+m7": 0.55, "espeak:en-gb-scotland+f1": 0.55, "espeak:en-gb-scotland+f2": 0.65,
    "espeak:en-gb-scotland+f3": 0.35, "espeak:en-gb-scotland+f4": 0.25,
    "espeak:en-029+m1": 0.60, "espeak:en-029+m2": 0.35, "espeak:en-029+m3": 0.50, "espeak:en-029+m4": 0.40,
    "espeak:en-029+m5": 0.55, "espeak:en-029+m6": 0.60, "espeak:en-029+m7": 0.50, "espeak:en-029+f1": 0.40,
    "espeak:en-029+f2": 0.55, "espeak:en-029+f3": 0.35, "espeak:en-029+f4": 0.35,
}


def weight(voice):
    """The voice's weight within its group: its judged intelligibility, 0 below the floor."""
    score = INTELLIGIBILITY.get(voice.name, 1.0)
    return score if score >= INTELLIGIBILITY_FLOOR else 0.0
