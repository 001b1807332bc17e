/**
 * The word lists of the false-hit guard (false-hit-guard.ts), English and
 * Spanish first: negation markers, negating prefixes, units, antonyms,
 * calendar names, function words. Extending the guard to a language or a
 * domain is an edit here; the rules stay in false-hit-guard.ts.
 */

/**
 * Negation markers of the languages this product is fed (English, Spanish,
 * plus the common Romance and Germanic forms). Contractions ("isn't",
 * "don't") are caught by the n't rule below.
 */
export const NEGATIONS = new Set([
  // English
  "not",
  "no",
  "never",
  "none",
  "nor",
  "neither",
  "nothing",
  "nobody",
  "nowhere",
  "cannot",
  "without",
  // Spanish, Portuguese, Italian, French
  "nunca",
  "jamas",
  "ni",
  "nada",
  "nadie",
  "ninguno",
  "ninguna",
  "ningun",
  "sin",
  "tampoco",
  "nao",
  "non",
  "mai",
  "senza",
  "pas",
  "jamais",
  "sans",
  // German, Dutch
  "nicht",
  "kein",
  "keine",
  "nie",
  "niet",
  "geen",
]);

/** English contractions written without their apostrophe, as people type them ("wasnt", "dont"). */
export const BARE_CONTRACTIONS = new Set([
  "isnt",
  "arent",
  "wasnt",
  "werent",
  "dont",
  "doesnt",
  "didnt",
  "cant",
  "couldnt",
  "wont",
  "wouldnt",
  "shouldnt",
  "hasnt",
  "havent",
  "hadnt",
  "mustnt",
  "neednt",
]);

/**
 * Prefixes that negate a word in English and Spanish: "unsafe", "dislike",
 * "illegal", "inedible", "incorrect", "nonfat", "inseguro", "deshacer". A word
 * of one text that is a word of the other with one of these in front flips
 * the meaning while the vectors stay close.
 */
export const NEGATING_PREFIXES = ["un", "in", "im", "il", "ir", "i", "dis", "non", "non-", "des", "a"];

/**
 * Units that change a number's meaning ("5 mg" is not "5 g", "10 %" is not
 * "10"). A number keeps the unit written right after it, with or without a space.
 */
export const UNITS = new Set([
  "%",
  "mg",
  "mcg",
  "ug",
  "µg",
  "g",
  "kg",
  "lb",
  "lbs",
  "oz",
  "ml",
  "l",
  "cl",
  "dl",
  "mm",
  "cm",
  "m",
  "km",
  "mi",
  "ft",
  "in",
  // Not bare "c" or "f": "12C" is a room more often than a temperature, and an identifier anyway.
  "°c",
  "°f",
  "ms",
  "s",
  "min",
  "h",
  "hr",
  "hrs",
  "am",
  "pm",
  "k",
  "m²",
  "usd",
  "eur",
  "mb",
  "gb",
  "tb",
  "w",
  "kw",
  "kwh",
  "mw",
  "v",
  "hz",
  "khz",
  "mhz",
  "ghz",
  "mah",
  "db",
]);

/**
 * Words whose opposite is another word, not an affix: "increase" / "decrease",
 * "zoom in" / "zoom out", "subir" / "bajar". A text with one and the other
 * with its opposite ask different things, however close their vectors.
 */
export const ANTONYMS: readonly (readonly [string, string])[] = [
  ["increase", "decrease"],
  ["in", "out"],
  ["on", "off"],
  ["up", "down"],
  ["open", "close"],
  ["upload", "download"],
  ["import", "export"],
  ["add", "remove"],
  ["buy", "sell"],
  ["win", "lose"],
  ["before", "after"],
  ["more", "less"],
  ["maximum", "minimum"],
  ["max", "min"],
  ["start", "stop"],
  ["accept", "reject"],
  ["enable", "disable"],
  ["include", "exclude"],
  ["first", "last"],
  ["best", "worst"],
  ["cheap", "expensive"],
  ["cheapest", "most"],
  ["hot", "cold"],
  ["high", "low"],
  ["higher", "lower"],
  ["early", "late"],
  ["fast", "slow"],
  ["left", "right"],
  ["aumentar", "disminuir"],
  ["subir", "bajar"],
  ["sube", "baja"],
  ["abrir", "cerrar"],
  ["comprar", "vender"],
  ["ganar", "perder"],
  ["antes", "despues"],
  ["mas", "menos"],
  ["encender", "apagar"],
  ["enciendo", "apago"],
  ["mayor", "menor"],
  ["entrada", "salida"],
  ["primero", "ultimo"],
  ["mejor", "peor"],
  ["caro", "barato"],
  ["frio", "caliente"],
  ["alto", "bajo"],
  ["temprano", "tarde"],
  ["izquierda", "derecha"],
  ["activar", "desactivar"],
];

/** Months and weekdays, English and Spanish ("may" only next to a number: it is also a verb). */
export const CALENDAR = new Set(
  (
    "january february march april june july august september october november december " +
    "monday tuesday wednesday thursday friday saturday sunday " +
    "enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre noviembre diciembre " +
    "lunes martes miercoles jueves viernes sabado domingo"
  ).split(" "),
);

/**
 * Words that carry no topic of their own in English and Spanish: articles,
 * pronouns, auxiliaries, question words, politeness. Prepositions and
 * particles that change meaning ("on"/"off", "from"/"to", "up"/"down") are
 * deliberately not here.
 */
export const FUNCTION_WORDS = new Set(
  (
    "the a an is are was were be been being am do does did doing have has had having i me my mine we us our you your " +
    "he him his she her it its they them their this that these those there here what which who whom whose how when " +
    "where why can could would should will shall may might must please kindly just also very really so too and or but " +
    "if then than as of about for at by some any much many one get got let tell know want like need " +
    "el la los las lo un una unos unas es son era eran fue ser estar esta este esto estos estas ese esa eso " +
    "yo me mi mis tu tus te su sus nos nuestro nuestra usted ustedes el ella ellos ellas que cual cuales quien como " +
    "cuando donde por para de del al y o pero si puedo puede pueden podria favor hay muy tambien"
  ).split(" "),
);

export const ARTICLES = new Set(["the", "an", "el", "la", "los", "las", "un", "una", "unos", "unas", "lo"]);
