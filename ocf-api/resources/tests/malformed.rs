#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Malformed meta-data gives typed errors and never panics.

use std::path::Path;

use ocf_resources::{Metadata, MetadataError};
use proptest::prelude::*;

/// What each file in `tests/malformed/` must give.
fn expected(file: &str) -> fn(&MetadataError) -> bool {
    match file {
        "empty.xml" | "only-prolog.xml" => |e| matches!(e, MetadataError::Empty),
        "unclosed-root.xml" | "cut-short.xml" => |e| {
            matches!(
                e,
                MetadataError::Unclosed { .. } | MetadataError::Xml { .. }
            )
        },
        "root-without-name.xml" | "parameter-without-name.xml" | "action-without-name.xml" => {
            |e| matches!(e, MetadataError::MissingAttribute { .. })
        }
        "wrong-root.xml" => |e| matches!(e, MetadataError::WrongRoot { found } if found == "html"),
        "two-roots.xml" | "usage-text.xml" => {
            |e| matches!(e, MetadataError::TrailingContent { .. })
        }
        "not-utf8.xml" => |e| matches!(e, MetadataError::NotUtf8 { position: 23 }),
        "too-deep.xml" => |e| matches!(e, MetadataError::TooDeep { .. }),
        "mismatched-end.xml"
        | "unknown-entity.xml"
        | "duplicate-attribute.xml"
        | "unquoted-attribute.xml"
        | "bare-lt.xml" => |e| matches!(e, MetadataError::Xml { .. }),
        other => panic!("no expectation for malformed/{other}: add one"),
    }
}

#[test]
fn every_malformed_file_gives_its_typed_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let bytes = std::fs::read(&path).unwrap();
        let err = Metadata::parse(&bytes).expect_err(&name);
        assert!(expected(&name)(&err), "{name}: unexpected error {err:?}");
        // Every error says what is wrong in words.
        assert!(!err.to_string().is_empty());
        count += 1;
    }
    assert!(count >= 15, "only {count} malformed samples");
}

#[test]
fn lenient_where_real_agents_bend_the_dtd() {
    // Agent version "1.2", unknown attributes and elements, integer default "5s",
    // an action without timeout, a select with options, 1.0 role names.
    let xml = br#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="Odd" version="1.2" extra="yes">
<version>1.0</version>
<longdesc lang="en">Line one &amp; <b>bold</b> &#65;</longdesc>
<shortdesc lang="en">odd</shortdesc>
<special tag="ignored"/>
<parameters>
<parameter name="n" unique-group="g" advanced="1"><content type="integer" default="5s"/></parameter>
<parameter name="s"><content type="select" default="a"><option value="a"/><option value="b"/></content></parameter>
<parameter name="old" deprecated="1"><content type="second"/></parameter>
</parameters>
<actions><action name="monitor" role="Master" interval="10"/><action name="restart" timeout="5"/></actions>
</resource-agent>"#;
    let meta = Metadata::parse(xml).unwrap();
    assert_eq!(meta.version.as_deref(), Some("1.2"));
    assert_eq!(meta.longdesc[0].text, "Line one & bold A");
    assert_eq!(meta.parameters[0].unique_group.as_deref(), Some("g"));
    assert_eq!(meta.parameters[1].content.options, ["a", "b"]);
    assert!(meta.parameters[2].deprecated.is_some());
    assert_eq!(meta.actions[0].timeout(), None);
    assert_eq!(
        meta.actions[0].role(),
        Some(ocf_resources::metadata::Role::Promoted)
    );
    assert_eq!(meta.actions[1].action(), None);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Metadata::parse(&bytes);
    }

    #[test]
    fn mangled_real_meta_data_never_panics(cut in 0usize..2000, flip in 0usize..2000, byte in any::<u8>()) {
        let mut xml = SAMPLE.as_bytes().to_vec();
        if flip < xml.len() {
            xml[flip] = byte;
        }
        xml.truncate(cut.min(xml.len()));
        let _ = Metadata::parse(&xml);
    }
}

const SAMPLE: &str = r#"<?xml version="1.0"?>
<resource-agent name="Stateful" version="1.2">
<version>1.1</version>
<longdesc lang="en">Example</longdesc>
<shortdesc lang="en">Example stateful resource agent</shortdesc>
<parameters>
<parameter name="state" unique-group="state">
<longdesc lang="en">Location to store the resource state in</longdesc>
<shortdesc lang="en">State file</shortdesc>
<content type="string" default="/var/run/Stateful-RESOURCE_ID.state" />
</parameter>
</parameters>
<actions>
<action name="start"   timeout="20s" />
<action name="monitor" depth="0" timeout="20s" interval="10s" role="Promoted"/>
</actions>
</resource-agent>"#;
