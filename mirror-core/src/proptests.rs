//! Property tests of the parsers that read untrusted input: manifests, the
//! name/tag/digest grammars (checked against the OCI spec's regular
//! expressions, with the `regex` crate as the oracle) and `WWW-Authenticate`
//! challenges. Case counts are modest so `cargo test` stays fast.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::digest::Digest;
use crate::manifest::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_MANIFEST_SIZE, Manifest, OCI_INDEX, OCI_MANIFEST,
};
use crate::reference::{MAX_NAME_LEN, RepositoryName, validate_tag};
use crate::remote::auth::{Challenge, parse_challenge};

/// The OCI distribution spec's `<name>` (without the length limit, which
/// is checked next to it).
const NAME_RE: &str = r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$";
/// The spec's `<reference>` as a tag.
const TAG_RE: &str = r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$";
/// What regmirror accepts as a digest: sha256 only, lower-case hex.
const DIGEST_RE: &str = r"^sha256:[a-f0-9]{64}$";

fn oracle(re: &str) -> regex::Regex {
    regex::Regex::new(re).unwrap()
}

/// Strings that are near the name grammar: its characters, and a few
/// others, in any order.
fn name_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._/-]{0,40}",
        "[a-zA-Z0-9._/ %-]{0,20}",
        // Valid by construction.
        "[a-z0-9]{1,8}((\\.|_|__|-{1,3})[a-z0-9]{1,8}){0,3}(/[a-z0-9]{1,8}((\\.|_|__|-{1,3})[a-z0-9]{1,8}){0,3}){0,3}",
        // Around the length limit.
        "[a-z]{250,260}",
        "([a-z]{9}/){24,26}[a-z]{1,9}",
    ]
}

fn digest_hex() -> impl Strategy<Value = String> {
    "[a-f0-9]{64}"
}

fn descriptor(media: &'static str) -> impl Strategy<Value = Value> {
    (digest_hex(), 0u64..1 << 40).prop_map(move |(hex, size)| {
        json!({"mediaType": media, "digest": format!("sha256:{hex}"), "size": size})
    })
}

/// A valid image manifest or index, as JSON.
fn valid_manifest() -> impl Strategy<Value = Value> {
    let image = (
        prop_oneof![Just(DOCKER_MANIFEST), Just(OCI_MANIFEST)],
        descriptor("application/vnd.oci.image.config.v1+json"),
        prop::collection::vec(
            descriptor("application/vnd.oci.image.layer.v1.tar+gzip"),
            0..8,
        ),
        any::<bool>(),
    )
        .prop_map(|(media, config, layers, with_media)| {
            let mut m = json!({"schemaVersion": 2, "config": config, "layers": layers});
            if with_media || media == DOCKER_MANIFEST {
                m["mediaType"] = json!(media);
            }
            m
        });
    let index = (
        prop_oneof![Just(DOCKER_MANIFEST_LIST), Just(OCI_INDEX)],
        prop::collection::vec(descriptor(OCI_MANIFEST), 0..8),
    )
        .prop_map(|(media, manifests)| {
            json!({"schemaVersion": 2, "mediaType": media, "manifests": manifests})
        });
    prop_oneof![image, index]
}

/// JSON values shaped a little like manifests: known keys with values of
/// any type, nested.
fn json_ish() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z0-9:./+-]{0,20}".prop_map(Value::from),
        digest_hex().prop_map(|h| Value::from(format!("sha256:{h}"))),
        prop_oneof![
            Just(DOCKER_MANIFEST),
            Just(DOCKER_MANIFEST_LIST),
            Just(OCI_MANIFEST),
            Just(OCI_INDEX)
        ]
        .prop_map(Value::from),
    ];
    let keys = prop_oneof![
        Just("schemaVersion"),
        Just("mediaType"),
        Just("config"),
        Just("layers"),
        Just("manifests"),
        Just("subject"),
        Just("artifactType"),
        Just("digest"),
        Just("size"),
        Just("urls"),
        Just("platform"),
        Just("annotations"),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// The descriptors (media type, digest, size) in a manifest's JSON.
fn listed(v: &Value, key: &str) -> Vec<(String, String, u64)> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    (
                        d["mediaType"].as_str().unwrap().to_string(),
                        d["digest"].as_str().unwrap().to_string(),
                        d["size"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn triple(d: &crate::Descriptor) -> (String, String, u64) {
    (d.media_type.clone(), d.digest.to_string(), d.size)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn manifest_parse_never_panics_on_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        content_type in proptest::option::of("[a-z/.+;= -]{0,40}"),
    ) {
        let _ = Manifest::parse(&bytes, content_type.as_deref());
    }

    #[test]
    fn manifest_parse_never_panics_on_json_ish(value in json_ish(), ct in proptest::option::of(prop_oneof![Just(OCI_MANIFEST), Just(OCI_INDEX), Just("text/plain")])) {
        let bytes = serde_json::to_vec(&value).unwrap();
        if let Ok(m) = Manifest::parse(&bytes, ct) {
            // Whatever it accepts is one of the four types it mirrors.
            prop_assert!(crate::manifest::is_manifest_media_type(&m.media_type));
        }
    }

    #[test]
    fn valid_manifests_round_trip(value in valid_manifest(), pretty in any::<bool>()) {
        let bytes = if pretty {
            serde_json::to_vec_pretty(&value).unwrap()
        } else {
            serde_json::to_vec(&value).unwrap()
        };
        let m = Manifest::parse(&bytes, None).unwrap();
        if value.get("manifests").is_some() {
            prop_assert_eq!(m.children().iter().map(triple).collect::<Vec<_>>(), listed(&value, "manifests"));
            prop_assert!(m.blobs().is_empty());
        } else {
            let mut want = vec![(
                value["config"]["mediaType"].as_str().unwrap().to_string(),
                value["config"]["digest"].as_str().unwrap().to_string(),
                value["config"]["size"].as_u64().unwrap(),
            )];
            want.extend(listed(&value, "layers"));
            prop_assert_eq!(m.blobs().into_iter().map(triple).collect::<Vec<_>>(), want);
            prop_assert!(m.children().is_empty());
        }
        if let Some(media) = value["mediaType"].as_str() {
            prop_assert_eq!(m.media_type.as_str(), media);
        }
    }

    #[test]
    fn repository_names_follow_the_oci_grammar(s in name_like()) {
        let expected = oracle(NAME_RE).is_match(&s) && s.len() <= MAX_NAME_LEN;
        let got = RepositoryName::parse(&s);
        prop_assert_eq!(got.is_ok(), expected, "{:?}: {:?}", s, got);
        if let Ok(n) = got {
            prop_assert_eq!(n.as_str(), s.as_str());
        }
    }

    #[test]
    fn tags_follow_the_oci_grammar(s in prop_oneof![
        "[a-zA-Z0-9._-]{0,20}",
        "[a-zA-Z0-9_][a-zA-Z0-9._-]{120,135}",
        "[a-zA-Z0-9._:/@ -]{0,12}",
        any::<String>(),
    ]) {
        let expected = oracle(TAG_RE).is_match(&s);
        prop_assert_eq!(validate_tag(&s).is_ok(), expected, "{:?}", s);
    }

    #[test]
    fn digests_are_sha256_lower_hex(s in prop_oneof![
        "sha256:[a-f0-9]{64}",
        "sha256:[a-fA-F0-9]{60,68}",
        "(sha256|sha512|md5|SHA256)?:?[a-f0-9:./]{0,70}",
        any::<String>(),
    ]) {
        let expected = oracle(DIGEST_RE).is_match(&s);
        let got = Digest::parse(&s);
        prop_assert_eq!(got.is_ok(), expected, "{:?}", s);
        if let Ok(d) = got {
            prop_assert_eq!(d.to_string(), s);
        }
    }

    #[test]
    fn challenge_parser_never_panics(s in prop_oneof![
        any::<String>(),
        "(Bearer|Basic|bearer|Negotiate)? ?([a-z]{0,8}=(\"[^\"]{0,12}\"?|[a-z,:/]{0,8}),? ?){0,5}",
    ]) {
        let _ = parse_challenge(&s);
    }

    #[test]
    fn bearer_challenges_round_trip(
        realm in "https?://[a-z0-9.:-]{1,20}/[a-z0-9/_-]{0,20}",
        service in proptest::option::of("[a-zA-Z0-9.:_-]{1,20}"),
        scope in proptest::option::of("repository:[a-z0-9/_-]{1,20}:(pull|pull,push|\\*)"),
        spaces in any::<bool>(),
    ) {
        let sep = if spaces { ", " } else { "," };
        let mut h = format!("Bearer realm=\"{realm}\"");
        if let Some(s) = &service {
            h.push_str(&format!("{sep}service=\"{s}\""));
        }
        if let Some(s) = &scope {
            h.push_str(&format!("{sep}scope=\"{s}\""));
        }
        prop_assert_eq!(
            parse_challenge(&h),
            Some(Challenge::Bearer { realm, service, scope })
        );
    }
}

#[test]
fn oversize_manifests_are_refused_before_parsing() {
    let big = vec![b'{'; MAX_MANIFEST_SIZE as usize + 1];
    assert!(Manifest::parse(&big, None).is_err());
}
