//! The engine end to end: parse, then render over JSON values.

use serde_json::json;

use super::*;

fn r(t: &str, v: &Value) -> String {
    Template::parse(t).unwrap().render(v).unwrap()
}

fn inspect() -> Value {
    json!({
        "Id": "abc",
        "State": {"Status": "exited", "ExitCode": 0, "Running": false, "Pid": 0},
        "Config": {"User": "", "Labels": {"k": "v", "a.b": "c"}, "Env": ["A=1", "B=2"], "Cmd": ["sh", "-c", "echo hi"], "Entrypoint": null},
        "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}, "zz": {"IPAddress": "10.0.0.2"}}},
        "Mounts": [],
        "Size": 1.5,
    })
}

#[test]
fn fields_and_zero_values() {
    let v = inspect();
    assert_eq!(
        r("{{.State.Status}} {{.Config.User}} {{.State.ExitCode}}", &v),
        "exited  0"
    );
    assert_eq!(r("{{.Id}}", &v), "abc");
    assert_eq!(r("{{.State.Running}}", &v), "false");
    assert_eq!(r("{{.Config.Cmd}}", &v), "[sh -c echo hi]");
    assert_eq!(r("{{.Config.Entrypoint}}", &v), "[]");
    assert_eq!(
        r("{{.State.Health}}", &json!({"State": {"Health": null}})),
        "<nil>"
    );
    assert_eq!(
        r("{{.Config.Labels}}", &json!({"Config": {"Labels": null}})),
        "map[]"
    );
    assert_eq!(r("{{json .Config.Entrypoint}}", &v), "null");
    assert_eq!(r("{{.Config.Labels}}", &v), "map[a.b:c k:v]");
    assert_eq!(r("{{.Size}}", &v), "1.5");
    assert_eq!(r("plain text", &v), "plain text");
    assert_eq!(r("{{.}}", &json!("x")), "x");
}

#[test]
fn missing_key_is_an_error() {
    let t = Template::parse("{{.Config.Nope}}").unwrap();
    let e = t.render(&inspect()).unwrap_err();
    assert!(e.0.contains("map has no entry for key \"Nope\""), "{e}");
    let e = Template::parse("{{.State.Status.X}}")
        .unwrap()
        .render(&inspect())
        .unwrap_err();
    assert!(e.0.contains("can't evaluate field X"), "{e}");
}

#[test]
fn functions() {
    let v = inspect();
    assert_eq!(r(r#"{{index .Config.Labels "k"}}"#, &v), "v");
    assert_eq!(r(r#"{{index .Config.Labels "a.b"}}"#, &v), "c");
    assert_eq!(r(r#"{{index .Config.Labels "missing"}}"#, &v), "");
    assert_eq!(r("{{index .Config.Cmd 1}}", &v), "-c");
    assert_eq!(r(r#"{{join .Config.Env ","}}"#, &v), "A=1,B=2");
    assert_eq!(r("{{json .Config.Labels}}", &v), r#"{"a.b":"c","k":"v"}"#);
    assert_eq!(r("{{json .Mounts}}", &v), "[]");
    assert_eq!(
        r("{{json .}}", &json!({"D": "<none>&"})),
        r#"{"D":"\u003cnone\u003e\u0026"}"#
    );
    assert_eq!(r("{{json .Config.Entrypoint}}", &v), "null");
    assert_eq!(r("{{upper .State.Status}}", &v), "EXITED");
    assert_eq!(r("{{.State.Status | upper}}", &v), "EXITED");
    assert_eq!(r("{{lower \"ABC\"}}", &v), "abc");
    assert_eq!(r("{{title \"hello world\"}}", &v), "Hello World");
    assert_eq!(r("{{len .Config.Env}}", &v), "2");
    assert_eq!(r(r#"{{split "a:b:c" ":"}}"#, &v), "[a b c]");
    assert_eq!(r(r#"{{join (split "a:b" ":") "-"}}"#, &v), "a-b");
    assert_eq!(
        r(r#"{{printf "%s-%d|%-5s|%5s|" "x" 3 "ab" "cd"}}"#, &v),
        "x-3|ab   |   cd|"
    );
    assert_eq!(r(r#"{{printf "%q" .Id}}"#, &v), "\"abc\"");
    assert_eq!(r(r#"{{truncate .Id 2}}"#, &v), "ab");
    assert_eq!(r(r#"{{pad .Id 1 2}}|"#, &v), " abc  |");
    assert_eq!(r("{{println .Id}}{{println}}", &v), "abc\n\n");
    assert_eq!(r("{{println .Id .State.ExitCode}}", &v), "abc 0\n");
    assert_eq!(r("{{print 1 2 \"a\" \"b\"}}", &v), "1 2ab");
    assert_eq!(
        r(
            "{{eq .State.Status \"exited\"}} {{ne .State.ExitCode 0}}",
            &v
        ),
        "true false"
    );
    assert_eq!(
        r(
            "{{if and .State.Running (eq .State.Pid 0)}}y{{else}}n{{end}}",
            &v
        ),
        "n"
    );
    assert_eq!(r("{{or .Config.User \"root\"}}", &v), "root");
    assert_eq!(r("{{not .State.Running}}", &v), "true");
    assert_eq!(r("{{gt (len .Config.Env) 1}}", &v), "true");
    assert_eq!(r("{{slice .Id 1}}", &v), "bc");
}

#[test]
fn range_if_with_and_variables() {
    let v = inspect();
    assert_eq!(r("{{range .Config.Env}}[{{.}}]{{end}}", &v), "[A=1][B=2]");
    assert_eq!(
        r("{{range $i, $e := .Config.Env}}{{$i}}={{$e}} {{end}}", &v),
        "0=A=1 1=B=2 "
    );
    assert_eq!(
        r(
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{$v.IPAddress}};{{end}}",
            &v
        ),
        "bridge:172.17.0.2;zz:10.0.0.2;"
    );
    assert_eq!(
        r(
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &v
        ),
        "172.17.0.210.0.0.2"
    );
    assert_eq!(r("{{range .Mounts}}x{{else}}none{{end}}", &v), "none");
    assert_eq!(r("{{range .Config.Env}}{{$.Id}}{{end}}", &v), "abcabc");
    assert_eq!(
        r(
            "{{if .Config.User}}u{{else if .State.Running}}r{{else}}other{{end}}",
            &v
        ),
        "other"
    );
    assert_eq!(r("{{with .State}}{{.Status}}{{end}}", &v), "exited");
    assert_eq!(r("{{with .Config.User}}x{{else}}empty{{end}}", &v), "empty");
    assert_eq!(r("{{$x := .Id}}{{$x}}-{{$x = \"y\"}}{{$x}}", &v), "abc-y");
    assert_eq!(r("{{/* a comment */}}ok", &v), "ok");
}

#[test]
fn trim_markers() {
    let v = inspect();
    assert_eq!(r("a  {{- .Id -}}  b", &v), "aabcb");
    assert_eq!(
        r("{{range .Config.Env -}}\n  {{.}}\n{{- end}}", &v),
        "A=1B=2"
    );
}

#[test]
fn parse_errors() {
    assert!(Template::parse("{{.Id").is_err());
    assert!(Template::parse("{{if .Id}}x").is_err());
    assert!(Template::parse("{{end}}").is_err());
    let e = Template::parse("{{nosuch .Id}}").unwrap_err();
    assert!(e.0.contains("function \"nosuch\" not defined"), "{e}");
    assert!(Template::parse(r#"{{"unterminated}}"#).is_err());
}

#[test]
fn strings_with_braces_and_escapes() {
    let v = json!({"A": "x"});
    assert_eq!(r(r#"{{"}}"}}{{.A}}"#, &v), "}}x");
    assert_eq!(r(r#"{{"a\tb"}}"#, &v), "a\tb");
    assert_eq!(r("{{`raw\\n`}}", &v), "raw\\n");
}

#[test]
fn unescapes_format_tabs() {
    assert_eq!(
        unescape_format(r"{{.ID}}\t{{.Names}}\n"),
        "{{.ID}}\t{{.Names}}\n"
    );
}
