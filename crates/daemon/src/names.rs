//! Container names: validation and Docker-style random names (`adjective_surname`).

use rand::seq::SliceRandom;

const LEFT: &[&str] = &[
    "admiring",
    "adoring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "beautiful",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "recursing",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const RIGHT: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "archimedes",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bell",
    "bhabha",
    "booth",
    "borg",
    "bose",
    "brahmagupta",
    "brown",
    "burnell",
    "cannon",
    "carson",
    "cerf",
    "chandrasekhar",
    "chatelet",
    "clarke",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "dirac",
    "driscoll",
    "dubinsky",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goldberg",
    "golick",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hertz",
    "hodgkin",
    "hopper",
    "hypatia",
    "jackson",
    "jang",
    "jennings",
    "johnson",
    "kalam",
    "kepler",
    "khorana",
    "knuth",
    "kowalevski",
    "lamarr",
    "lamport",
    "leakey",
    "leavitt",
    "lovelace",
    "lumiere",
    "mahavira",
    "mayer",
    "mccarthy",
    "mclean",
    "meitner",
    "mendel",
    "mirzakhani",
    "montalcini",
    "moore",
    "morse",
    "napier",
    "nash",
    "newton",
    "nobel",
    "noether",
    "pare",
    "pascal",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "ptolemy",
    "raman",
    "ramanujan",
    "ride",
    "ritchie",
    "rosalind",
    "saha",
    "sammet",
    "shannon",
    "shockley",
    "sinoussi",
    "stonebraker",
    "swanson",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "varahamihira",
    "visvesvaraya",
    "wescoff",
    "wilbur",
    "wiles",
    "williams",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// A random `adjective_surname`; `retry` > 0 appends a digit as Docker does after collisions.
pub fn random_name(retry: u32) -> String {
    let mut rng = rand::thread_rng();
    let l = LEFT.choose(&mut rng).copied().unwrap_or("happy");
    let r = RIGHT.choose(&mut rng).copied().unwrap_or("turing");
    if l == "boring" && r == "wozniak" {
        return random_name(retry);
    }
    if retry > 0 {
        format!("{l}_{r}{}", retry % 10)
    } else {
        format!("{l}_{r}")
    }
}

/// A container name Docker would refuse (400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
pub struct InvalidName(pub String);

impl crate::errors::Classified for InvalidName {
    fn kind(&self) -> berth_api_types::ErrorKind {
        berth_api_types::ErrorKind::InvalidParameter
    }
}

crate::errors::into_api_error!(InvalidName);

/// Docker's container names, `/?[a-zA-Z0-9][a-zA-Z0-9_.-]+`: at least two characters.
/// Returns the name without a leading slash.
pub fn validate(name: &str) -> Result<String, InvalidName> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = n.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(n.to_string())
    } else {
        Err(InvalidName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate("/web").unwrap(), "web");
        assert_eq!(validate("t2").unwrap(), "t2");
        assert_eq!(
            validate("t").unwrap_err().to_string(),
            "Invalid container name (t), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        assert!(validate("").is_err() && validate("/").is_err());
        assert!(validate("-a").is_err());
        assert!(validate("a b").is_err());
        let n = random_name(0);
        assert!(validate(&n).is_ok() && n.contains('_'));
    }
}
