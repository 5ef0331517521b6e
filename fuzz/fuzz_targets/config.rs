//! A run config (TOML) as `selfsup train --config` reads it, for every
//! vision and text method: parsed, typed and validated, or an error naming
//! the key; never a panic. (Models are not built: a valid config may still
//! ask for a large one.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use selfsup_text::TextDataConfig;
use selfsup_vision::data::ImageDataConfig;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let vision = selfsup_vision::registry().parse_run::<ImageDataConfig>(text, "fuzz.toml", &[]);
    if let Ok(config) = vision {
        let _ = config.to_toml();
    }
    let text_run = selfsup_text::registry().parse_run::<TextDataConfig>(text, "fuzz.toml", &[]);
    if let Ok(config) = text_run {
        let _ = config.to_toml();
    }
});
