use std::collections::BTreeMap;

use serde::Deserialize;

use super::{fields_of, fold, from_slice, from_str};
use crate::container::{CreateRequest, HostConfig};
use crate::network;

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Strict {
    name: String,
    count: i64,
    small: u16,
    ratio: f64,
    on: bool,
    list: Vec<String>,
    maybe: Option<String>,
    labels: BTreeMap<String, String>,
    inner: Inner,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Inner {
    #[serde(rename = "IPAddress")]
    ip_address: String,
    value: Option<serde_json::Value>,
}

#[test]
fn nulls_are_zero_values_even_without_serde_default() {
    let s: Strict = from_str(
        r#"{"Name":null,"Count":null,"Small":null,"Ratio":null,"On":null,"List":null,
            "Maybe":null,"Labels":null,"Inner":null}"#,
    )
    .unwrap();
    assert_eq!(s, Strict::default());
    let s: Strict = from_str("{}").unwrap();
    assert_eq!(s, Strict::default());
    let s: Strict = from_str("null").unwrap();
    assert_eq!(s, Strict::default());
}

#[test]
fn keys_fold_case_and_unknown_keys_are_ignored() {
    let s: Strict = from_str(
        r#"{"name":"a","COUNT":3,"inner":{"ipaddress":"1.2.3.4","VALUE":{"kEy":null}},
            "Labels":{"Key":"v","key":"w"},"Whatever":[1,{"x":null}]}"#,
    )
    .unwrap();
    assert_eq!(s.name, "a");
    assert_eq!(s.count, 3);
    assert_eq!(s.inner.ip_address, "1.2.3.4");
    // Values typed as JSON keep what was sent; map keys are not folded.
    assert_eq!(s.inner.value, Some(serde_json::json!({"kEy": null})));
    assert_eq!(s.labels.len(), 2);
}

#[test]
fn exact_match_wins_and_the_last_duplicate_wins() {
    let s: Strict = from_str(r#"{"name":"a","Name":"b"}"#).unwrap();
    assert_eq!(s.name, "b");
    let s: Strict = from_str(r#"{"Name":"b","name":"a"}"#).unwrap();
    assert_eq!(s.name, "a");
    let s: Strict = from_str(r#"{"Name":"b","Name":"c"}"#).unwrap();
    assert_eq!(s.name, "c");
    // A later null leaves the earlier value (Go leaves the field untouched).
    let s: Strict = from_str(r#"{"Name":"b","name":null}"#).unwrap();
    assert_eq!(s.name, "b");
}

#[test]
fn null_elements_of_arrays_and_maps_are_zero_values() {
    let s: Strict = from_str(r#"{"List":["a",null],"Labels":{"k":null}}"#).unwrap();
    assert_eq!(s.list, vec!["a".to_string(), String::new()]);
    assert_eq!(s.labels["k"], "");
}

#[test]
fn integer_fields_refuse_fractions_exponents_and_overflow_as_go() {
    for (body, what) in [
        (r#"{"Count":1.5}"#, "number 1.5"),
        (r#"{"Count":1.0}"#, "number 1.0"),
        (r#"{"Count":1e9}"#, "number 1e9"),
        (r#"{"Count":1E+2}"#, "number 1E+2"),
        (r#"{"Count":-0.0}"#, "number -0.0"),
        (
            r#"{"Count":123456789012345678901234}"#,
            "number 123456789012345678901234",
        ),
        (
            r#"{"Count":9223372036854775808}"#,
            "number 9223372036854775808",
        ),
    ] {
        let e = from_str::<Strict>(body).unwrap_err();
        assert!(!e.is_syntax());
        assert_eq!(
            e.to_string(),
            format!(
                "json: cannot unmarshal {what} into Go struct field Strict.Count of type int64"
            )
        );
    }
    // The literal quoted is the one at the failing field, past strings that look numeric.
    let e = from_str::<Strict>(r#"{"Name":"1.5 -2e3","List":["7"],"Ratio":2.5,"Count":3.25}"#)
        .unwrap_err();
    assert!(e.to_string().contains("number 3.25 into"), "{e}");
    let e = from_str::<Strict>(r#"{"Small":65536}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "json: cannot unmarshal number 65536 into Go struct field Strict.Small of type uint16"
    );
    assert!(from_str::<Strict>(r#"{"Small":-1}"#).is_err());
    let s: Strict = from_str(r#"{"Count":-9223372036854775808,"Small":65535}"#).unwrap();
    assert_eq!((s.count, s.small), (i64::MIN, 65535));
    // Floats take integers.
    let s: Strict = from_str(r#"{"Ratio":2}"#).unwrap();
    assert_eq!(s.ratio, 2.0);
}

#[test]
fn wrong_kinds_name_the_field_as_go_does() {
    let e = from_str::<Strict>(r#"{"Inner":{"IPAddress":5}}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "json: cannot unmarshal number into Go struct field Inner.Inner.IPAddress of type string"
    );
    let e = from_str::<Strict>(r#"{"On":"yes"}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "json: cannot unmarshal string into Go struct field Strict.On of type bool"
    );
    let e = from_str::<Strict>(r#"[1]"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "json: cannot unmarshal array into Go value of type Strict"
    );
}

#[test]
fn malformed_json_keeps_serde_json_message() {
    let e = from_str::<Strict>(r#"{"Name":"#).unwrap_err();
    assert!(e.is_syntax());
    assert_eq!(
        e.to_string(),
        serde_json::from_str::<serde_json::Value>(r#"{"Name":"#)
            .unwrap_err()
            .to_string()
    );
    assert!(from_str::<Strict>("{} {}").unwrap_err().is_syntax());
}

#[test]
fn go_key_folding() {
    assert_eq!(fold("hostConfig"), fold("HOSTCONFIG"));
    assert_eq!(fold("k"), fold("\u{212a}"), "the Kelvin sign folds to K");
    assert_ne!(fold("a"), fold("b"));
}

#[test]
fn field_names_are_probed_from_the_derived_impl() {
    let f = fields_of::<HostConfig>();
    assert!(f.contains(&"ContainerIDFile") && f.contains(&"Memory"));
    assert!(fields_of::<String>().is_empty());
}

#[test]
fn create_body_with_promoted_config_fields() {
    // What docker-compose 1.29 and docker-py send: nulls in Healthcheck and HostConfig.
    let req: CreateRequest = from_str(
        r#"{"image":"busybox","Cmd":"sh","StopTimeout":null,"Healthcheck":{"Test":["CMD","true"],
            "Interval":1000000000,"Timeout":null,"Retries":null,"StartPeriod":null},
            "hostconfig":{"Memory":null,"NetworkMode":"bridge","PortBindings":{"80/tcp":null},
            "RestartPolicy":null,"LogConfig":{"Type":null,"Config":null}},
            "NetworkingConfig":{"EndpointsConfig":{"n1":{"Aliases":["a"],"IPAMConfig":null}}}}"#,
    )
    .unwrap();
    assert_eq!(req.config.image, "busybox");
    assert_eq!(req.config.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(req.config.stop_timeout, None);
    let h = req.config.healthcheck.unwrap();
    assert_eq!((h.interval, h.timeout, h.retries), (1_000_000_000, 0, 0));
    let hc = req.host_config.unwrap();
    assert_eq!((hc.memory, hc.network_mode.as_str()), (0, "bridge"));
    assert_eq!(hc.port_bindings.unwrap()["80/tcp"], None);
    let eps = req.networking_config.unwrap().endpoints_config.unwrap();
    assert_eq!(eps["n1"].aliases, Some(vec!["a".to_string()]));
    let e = from_str::<CreateRequest>(r#"{"Image":"b","HostConfig":{"Memory":1.5}}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "json: cannot unmarshal number 1.5 into Go struct field HostConfig.HostConfig.Memory of type int64"
    );
}

#[test]
fn network_create_with_null_ipam_fields() {
    // Ansible's docker_network and docker-py's IPAMConfig/IPAMPool.
    let req: network::CreateRequest = from_slice(
        br#"{"Name":"n","Driver":"bridge","IPAM":{"Driver":"default","Config":[{"Subnet":"10.9.0.0/24",
            "IPRange":null,"Gateway":null,"AuxiliaryAddresses":null}],"Options":null},
            "Options":null,"Labels":null,"EnableIPv6":null,"CheckDuplicate":true}"#,
    )
    .unwrap();
    let ipam = req.ipam.unwrap();
    let c = &ipam.config.unwrap()[0];
    assert_eq!(c.subnet, "10.9.0.0/24");
    assert_eq!(c.gateway, "");
    assert_eq!(req.enable_ipv6, None);
}

#[test]
fn strslice_fields_under_go_rules() {
    let req: CreateRequest = from_str(r#"{"Entrypoint":["a",null],"Shell":null}"#).unwrap();
    assert_eq!(req.config.entrypoint, Some(vec!["a".into(), String::new()]));
    assert_eq!(req.config.shell, None);
    assert!(from_str::<CreateRequest>(r#"{"Cmd":5}"#).is_err());
}
