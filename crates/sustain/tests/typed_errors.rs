//! The facade's errors are typed: a caller matches on the variant and its fields,
//! and the message is the line the CLI prints.

use sustain::checkpoint::Checkpoints;
use sustain::{ConfigError, Error, IoAction};

#[test]
fn fold_errors_are_config_variants_with_their_messages() {
    let labels: Vec<String> = ["a", " ", "b"].iter().map(|s| s.to_string()).collect();
    let e = sustain::cv::folds_from_labels(&labels).unwrap_err();
    assert!(matches!(
        e,
        Error::Config(ConfigError::MissingFoldLabel { row: 2 })
    ));
    assert_eq!(
        e.to_string(),
        "invalid settings: row 2 has no fold label (every subject needs one)"
    );

    let e = sustain::cv::make_folds(3, 5, None, 1).unwrap_err();
    assert!(matches!(
        e,
        Error::Config(ConfigError::FoldCount {
            n_folds: 5,
            n_subjects: 3
        })
    ));
    assert_eq!(
        e.to_string(),
        "invalid settings: folds = 5 must be between 2 and the number of subjects (3)"
    );

    let e = sustain::cv::combine(&[]).unwrap_err();
    assert!(matches!(e, Error::Config(ConfigError::NoFolds)));
}

#[test]
fn a_folder_that_cannot_be_made_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a_file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("checkpoints");
    let e = Checkpoints::new(&under_file).unwrap_err();
    match &e {
        Error::Io { action, path, .. } => {
            assert_eq!(*action, IoAction::Create);
            assert_eq!(path, &under_file);
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
    assert!(e
        .to_string()
        .starts_with(&format!("cannot create {}: ", under_file.display())));
}

#[test]
fn a_foreign_checkpoint_shows_twelve_characters_of_each_fingerprint() {
    let e = sustain::CheckpointError::Foreign {
        path: "out/checkpoint_k1.json".into(),
        saved: "é".repeat(20),
        expected: "0123456789abcdef".into(),
    };
    assert_eq!(
        e.to_string(),
        format!(
            "out/checkpoint_k1.json was made from different data or settings (fingerprint {} vs \
             0123456789ab); use another --out folder or delete it",
            "é".repeat(12)
        )
    );
}
