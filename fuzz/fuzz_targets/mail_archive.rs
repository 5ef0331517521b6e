//! A `.tar.gz` of mails, as `selfsup data mails` reads it: streaming, with
//! caps per message and per archive, refusing paths that climb out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selfsup_data::mail::read_mail_archive;

mod common;

fuzz_target!(|bytes: &[u8]| {
    let (_dir, archive) = common::write("mails.tar.gz", bytes);
    if let Ok((texts, names)) = read_mail_archive(&archive) {
        assert_eq!(texts.texts.len(), names.len());
        assert!(names.iter().all(|n| !n.contains('/') && n != ".."));
    }
});
