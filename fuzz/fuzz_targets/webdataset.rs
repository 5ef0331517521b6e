//! A WebDataset shard: indexed (refusing or skipping bad members), then
//! every indexed image read and decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selfsup_data::streaming::OnCorrupt;
use selfsup_data::webdataset::index_shards;

mod common;

fuzz_target!(|bytes: &[u8]| {
    let (dir, shard) = common::write("shard-000000.tar", bytes);
    common::names_file(index_shards(dir.path(), OnCorrupt::Fail), &shard);
    if let Ok(index) = index_shards(dir.path(), OnCorrupt::Skip) {
        let index = index.with_max_pixels(common::MAX_PIXELS);
        for i in 0..index.len() {
            common::names_file(index.decode(i), &shard);
        }
    }
});
