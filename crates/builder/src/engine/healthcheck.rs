//! `HEALTHCHECK`: Go durations and the test command.

use berth_image::config::HealthConfig;

use super::{fail, BuildError};
use crate::instruction::HealthcheckCmd;

pub(crate) fn healthcheck(h: &HealthcheckCmd) -> Result<HealthConfig, BuildError> {
    let trimmed = h.body.trim();
    let (kind, rest) = trimmed
        .split_once(char::is_whitespace)
        .unwrap_or((trimmed, ""));
    let mut hc = HealthConfig::default();
    if kind.eq_ignore_ascii_case("NONE") {
        if !rest.trim().is_empty() {
            return Err(fail("HEALTHCHECK NONE takes no arguments"));
        }
        hc.test = Some(vec!["NONE".into()]);
        return Ok(hc);
    }
    let dur = |name: &str, v: &Option<String>| -> Result<Option<i64>, BuildError> {
        match v {
            Some(v) => {
                let d = berth_go::parse_duration(v).map_err(fail)?;
                if d != 0 && d < 1_000_000 {
                    return Err(fail(format!("Interval \"{name}\" cannot be less than 1ms")));
                }
                Ok(Some(d))
            }
            None => Ok(None),
        }
    };
    hc.interval = dur("interval", &h.interval)?;
    hc.timeout = dur("timeout", &h.timeout)?;
    hc.start_period = dur("start-period", &h.start_period)?;
    hc.start_interval = dur("start-interval", &h.start_interval)?;
    if let Some(r) = &h.retries {
        let n: i64 = r
            .parse()
            .map_err(|_| fail(format!("invalid retries value {r:?}")))?;
        if n < 0 {
            return Err(fail("--retries cannot be negative"));
        }
        hc.retries = Some(n);
    }
    let rest = rest.trim();
    let test = if rest.starts_with('[') {
        let v: Vec<String> = serde_json::from_str(rest).map_err(|e| fail(e.to_string()))?;
        let mut t = vec!["CMD".to_string()];
        t.extend(v);
        t
    } else {
        vec!["CMD-SHELL".to_string(), rest.to_string()]
    };
    hc.test = Some(test);
    Ok(hc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruction::{command, Command};
    use crate::parser;
    use berth_image::archive::expand_port;

    #[test]
    fn ports() {
        assert_eq!(expand_port("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expand_port("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(expand_port("8000-8002").unwrap().len(), 3);
        assert!(expand_port("x").is_err());
        assert!(expand_port("80/icmp").is_err());
    }

    #[test]
    fn healthcheck_forms() {
        let p = |s: &str| -> Result<HealthConfig, String> {
            let df = parser::parse(&format!("FROM x\n{s}\n")).unwrap();
            match command(&df.instructions[1]).map_err(|e| e.to_string())? {
                Command::Healthcheck(h) => healthcheck(&h).map_err(|e| e.message),
                _ => panic!("not a HEALTHCHECK"),
            }
        };
        let hc =
            p("HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/ || exit 1").unwrap();
        assert_eq!(hc.interval, Some(5_000_000_000));
        assert_eq!(hc.retries, Some(3));
        assert_eq!(
            hc.test.unwrap(),
            vec!["CMD-SHELL", "curl -f http://x/ || exit 1"]
        );
        let hc = p("HEALTHCHECK CMD [\"true\"]").unwrap();
        assert_eq!(hc.test.unwrap(), vec!["CMD", "true"]);
        let hc = p("healthcheck none").unwrap();
        assert_eq!(hc.test.unwrap(), vec!["NONE"]);
        assert!(p("HEALTHCHECK --bogus=1 CMD true").is_err());
    }
}
