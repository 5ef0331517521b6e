//! WebDataset shards: written from an ImageFolder, indexed back to the same
//! images and labels, streamed to the same views, and read shard by shard.

use selfsup_data::streaming::{ImageIndex, OnCorrupt};
use selfsup_data::views::ViewRecipe;
use selfsup_data::webdataset::{index_shards, shard_order, write_shards};
use std::path::Path;

/// `root/<class>/<i>.(png|jpg)`: three classes, seven images of varied sizes.
fn image_folder(root: &Path) {
    for (c, class) in ["a", "b", "c"].iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..[3, 2, 2][c] {
            let n = (c * 3 + i) as u32;
            let image = image::RgbImage::from_fn(20 + n, 16 + 2 * n, |x, y| {
                image::Rgb([(x * 9 + n * 20) as u8, (y * 5) as u8, (n * 30) as u8])
            });
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            image
                .save(root.join(class).join(format!("{i}.{ext}")))
                .unwrap();
        }
    }
}

#[test]
fn shards_round_trip_to_the_same_images_labels_and_views() {
    let dir = tempfile::tempdir().unwrap();
    image_folder(&dir.path().join("folder"));
    let folder = ImageIndex::image_folder(&dir.path().join("folder")).unwrap();
    let out = dir.path().join("shards");
    let shards = write_shards(&folder, &out, 3, false).unwrap();
    assert_eq!(shards.len(), 3);
    assert!(shards[2].ends_with("shard-000002.tar"));
    let sharded = index_shards(&out, OnCorrupt::Fail).unwrap();
    assert_eq!(sharded.classes, folder.classes);
    let labels = |i: &ImageIndex| i.files.iter().map(|f| f.label).collect::<Vec<_>>();
    assert_eq!(labels(&sharded), labels(&folder));
    for i in 0..folder.len() {
        assert_eq!(
            sharded.decode(i).unwrap(),
            folder.decode(i).unwrap(),
            "image {i}"
        );
    }
    let mut recipe = ViewRecipe::simclr_cifar();
    recipe.size = 12;
    let all: Vec<usize> = (0..folder.len()).collect();
    let from_shards = sharded
        .views(&all, &[recipe.clone()], (3, 1), OnCorrupt::Fail)
        .unwrap();
    let from_folder = folder
        .views(&all, &[recipe], (3, 1), OnCorrupt::Fail)
        .unwrap();
    assert_eq!(from_shards, from_folder);
}

#[test]
fn an_epoch_reads_shard_after_shard_through_a_seeded_buffer() {
    let dir = tempfile::tempdir().unwrap();
    image_folder(&dir.path().join("folder"));
    let folder = ImageIndex::image_folder(&dir.path().join("folder")).unwrap();
    let out = dir.path().join("shards");
    write_shards(&folder, &out, 2, false).unwrap();
    let index = index_shards(&out, OnCorrupt::Fail).unwrap();
    let order = shard_order(&index, 0, 0, 1);
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, (0..7).collect::<Vec<_>>(), "a permutation");
    // Without a buffer each shard is read whole and in member order.
    for pair in order.windows(2) {
        let same_shard = index.files[pair[0]].path == index.files[pair[1]].path;
        assert!(!same_shard || pair[1] == pair[0] + 1, "{order:?}");
    }
    assert_eq!(order, shard_order(&index, 0, 0, 1), "seeded");
    let epochs: Vec<Vec<usize>> = (0..6).map(|e| shard_order(&index, 0, e, 3)).collect();
    assert!(epochs.iter().any(|o| o != &epochs[0]), "epochs differ");
}

#[test]
fn broken_shards_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let error = index_shards(dir.path(), OnCorrupt::Fail)
        .unwrap_err()
        .to_string();
    assert!(error.contains("no .tar shards"), "{error}");
    image_folder(&dir.path().join("folder"));
    let folder = ImageIndex::image_folder(&dir.path().join("folder")).unwrap();
    let out = dir.path().join("shards");
    let shards = write_shards(&folder, &out, 4, false).unwrap();
    // A damaged byte in the second shard (in a label or a tar header).
    let text = std::fs::read(&shards[1]).unwrap();
    let at = text.windows(2).position(|w| w == b"5\0").unwrap();
    let mut broken = text.clone();
    broken[at] = b'x';
    std::fs::write(&shards[1], &broken).unwrap();
    let error = index_shards(&out, OnCorrupt::Fail).unwrap_err().to_string();
    assert!(error.contains("shard-000001.tar"), "{error}");
    // A truncated image member fails at decode, naming the shard and offset.
    std::fs::write(&shards[1], &text).unwrap();
    let index = index_shards(&out, OnCorrupt::Fail).unwrap();
    let mut damaged = text.clone();
    let offset = index.files[4].offset.unwrap() as usize;
    damaged[offset..offset + 64].fill(0);
    std::fs::write(&shards[1], &damaged).unwrap();
    let error = index.decode(4).unwrap_err().to_string();
    assert!(
        error.contains("shard-000001.tar") && error.contains("member at byte"),
        "{error}"
    );
}

/// One member of a crafted shard: name, content, a size its header claims
/// instead of the content's, and (for a GNU sparse member) its real size.
type Member<'a> = (&'a str, &'a [u8], Option<u64>, Option<u64>);

/// A shard of `members`.
fn crafted_shard(path: &Path, members: &[Member]) {
    let mut bytes = Vec::new();
    for &(name, content, declared, sparse) in members {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).unwrap();
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        if let Some(real) = sparse {
            header.set_entry_type(tar::EntryType::GNUSparse);
            let gnu = header.as_gnu_mut().unwrap();
            gnu.set_real_size(real);
            gnu.sparse[0].set_offset(real - content.len() as u64);
            gnu.sparse[0].set_length(content.len() as u64);
        }
        if let Some(size) = declared {
            header.set_size(size);
        }
        header.set_cksum();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(content);
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    }
    bytes.resize(bytes.len() + 1024, 0);
    std::fs::write(path, bytes).unwrap();
}

fn png_bytes() -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(6, 5, image::Rgb([9, 8, 7]))
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

#[test]
fn a_sparse_member_declaring_100_gib_is_refused_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let png = png_bytes();
    let block = [0u8; 512];
    crafted_shard(
        &dir.path().join("shard-0.tar"),
        &[
            ("000.png", &png, None, None),
            ("000.cls", b"0", None, None),
            ("001.jpg", &block, None, Some(100 << 30)),
            ("001.cls", b"1", None, None),
        ],
    );
    let error = index_shards(dir.path(), OnCorrupt::Fail)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("shard-0.tar") && error.contains("001.jpg"),
        "{error}"
    );
    assert!(error.contains("sparse"), "{error}");
    let index = index_shards(dir.path(), OnCorrupt::Skip).unwrap();
    assert_eq!(index.len(), 1, "the sparse sample is left out");
    assert_eq!(index.decode(0).unwrap().dim(), (5, 6, 3));
}

#[test]
fn a_member_declaring_more_than_the_shard_holds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let png = png_bytes();
    // The size field says 200 MB (or 300 MB, over the member limit); the
    // shard is a few KB. An error naming the shard, nothing allocated.
    for declared in [200u64 << 20, 300 << 20] {
        crafted_shard(
            &dir.path().join("s.tar"),
            &[("000.png", &png, Some(declared), None)],
        );
        let error = index_shards(dir.path(), OnCorrupt::Fail)
            .unwrap_err()
            .to_string();
        assert!(error.contains("s.tar") && error.contains("EOF"), "{error}");
    }
}

#[test]
fn a_negative_or_long_label_is_refused_naming_the_member() {
    let dir = tempfile::tempdir().unwrap();
    let png = png_bytes();
    for (label, problem) in [
        (&b"-5"[..], "\"-5\" is not a class number"),
        (&[b'7'; 100][..], "too long"),
    ] {
        crafted_shard(
            &dir.path().join("s.tar"),
            &[
                ("000.png", &png, None, None),
                ("000.cls", label, None, None),
            ],
        );
        let error = index_shards(dir.path(), OnCorrupt::Fail)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("000.cls") && error.contains(problem),
            "{error}"
        );
        assert!(index_shards(dir.path(), OnCorrupt::Skip)
            .unwrap()
            .is_empty());
    }
}

#[test]
fn sharding_into_a_used_folder_needs_overwrite_and_leaves_no_stale_shard() {
    let dir = tempfile::tempdir().unwrap();
    image_folder(&dir.path().join("folder"));
    let folder = ImageIndex::image_folder(&dir.path().join("folder")).unwrap();
    let out = dir.path().join("shards");
    assert_eq!(write_shards(&folder, &out, 1, false).unwrap().len(), 7);
    let error = write_shards(&folder, &out, 4, false)
        .unwrap_err()
        .to_string();
    assert!(error.contains("--overwrite"), "{error}");
    assert_eq!(write_shards(&folder, &out, 4, true).unwrap().len(), 2);
    let index = index_shards(&out, OnCorrupt::Fail).unwrap();
    assert_eq!(index.len(), 7, "the five shards of the first run are gone");
}
