//! JPEG (libjpeg-turbo) and PNG (the `image` crate) decoding with the
//! pixel limit, at every DCT scale: an error or pixels, never a panic, a
//! signal or an allocation past the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selfsup_data::decode::decode_rgb;

mod common;

fuzz_target!(|bytes: &[u8]| {
    let denominator = [1, 2, 4, 8][bytes.first().map_or(0, |b| (b & 3) as usize)];
    if let Ok((pixels, _)) = decode_rgb(bytes, denominator, common::MAX_PIXELS) {
        let (height, width, channels) = pixels.dim();
        assert_eq!(channels, 3);
        assert!((height * width) as u64 <= common::MAX_PIXELS);
    }
});
