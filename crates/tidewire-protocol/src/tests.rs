//! Round-trip and schema-agreement properties over generated messages of every type.

use std::collections::HashMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::Value;

use crate::{schema, ClientMessage, ServerMessage};

/// Compiled per-message validators, keyed by schema file path.
fn validators() -> &'static HashMap<String, jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<String, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        schema::generate()
            .into_iter()
            .filter(|file| file.path.ends_with(".schema.json"))
            .map(|file| {
                let value: Value = serde_json::from_str(&file.contents).unwrap();
                let validator = jsonschema::draft202012::new(&value)
                    .unwrap_or_else(|err| panic!("{} does not compile: {err}", file.path));
                (file.path, validator)
            })
            .collect()
    })
}

fn assert_valid(schema_path: &str, wire: &Value) {
    let validator = &validators()[schema_path];
    let errors: Vec<String> = validator
        .iter_errors(wire)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{wire} fails {schema_path}: {errors:#?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn client_messages_round_trip_and_match_their_schemas(message in any::<ClientMessage>()) {
        let text = serde_json::to_string(&message).unwrap();
        let parsed: ClientMessage = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&parsed, &message);
        let decoded = crate::decode_client_message(&text, 64).unwrap();
        prop_assert_eq!(&decoded, &message);
        let wire: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(wire["type"].as_str(), Some(message.tag()));
        assert_valid(&format!("client/{}.schema.json", message.tag()), &wire);
        assert_valid("client-message.schema.json", &wire);
    }

}

/// The strategy for the whole server-message enum nests deeply enough that a debug
/// build needs more than a test thread's default stack to build its values.
#[test]
fn server_messages_round_trip_and_match_their_schemas() {
    let check = || {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
        let outcome = runner.run(&any::<ServerMessage>(), |message| {
            let text = message.to_json();
            let parsed: ServerMessage = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&parsed, &message);
            let wire: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(wire["type"].as_str(), Some(message.tag()));
            assert_valid(&format!("server/{}.schema.json", message.tag()), &wire);
            assert_valid("server-message.schema.json", &wire);
            Ok(())
        });
        if let Err(failure) = outcome {
            panic!("{failure}");
        }
    };
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(check)
        .expect("a test thread starts")
        .join()
        .expect("the property holds");
}

#[test]
fn every_tag_has_a_schema_file() {
    for tag in ClientMessage::TAGS {
        assert!(
            validators().contains_key(&format!("client/{tag}.schema.json")),
            "{tag}"
        );
    }
    for tag in ServerMessage::TAGS {
        assert!(
            validators().contains_key(&format!("server/{tag}.schema.json")),
            "{tag}"
        );
    }
}

#[test]
fn schemas_reject_a_message_with_the_wrong_tag_or_a_missing_field() {
    assert!(!validators()["client/ping.schema.json"]
        .is_valid(&serde_json::json!({"type": "pong", "id": "1"})));
    assert!(!validators()["client/ping.schema.json"].is_valid(&serde_json::json!({"type": "ping"})));
    assert!(!validators()["client-message.schema.json"]
        .is_valid(&serde_json::json!({"type": "nope", "id": "1"})));
    assert!(!validators()["client/create.schema.json"].is_valid(
        &serde_json::json!({"type": "create", "id": "1", "database": "a.b", "collection": "c", "record": {}})
    ));
}

#[test]
fn every_reply_belongs_to_the_profile_of_its_request() {
    for (request, replies) in ClientMessage::REPLIES {
        let profile = ClientMessage::profile_of(request).expect("a request of the table");
        for reply in *replies {
            assert_eq!(
                ServerMessage::profile_of(reply),
                Some(profile),
                "{request} -> {reply}"
            );
        }
    }
}
