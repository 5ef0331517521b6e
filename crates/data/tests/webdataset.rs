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
    let shards = write_shards(&folder, &out, 3).unwrap();
    assert_eq!(shards.len(), 3);
    assert!(shards[2].ends_with("shard-000002.tar"));
    let sharded = index_shards(&out).unwrap();
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
    write_shards(&folder, &out, 2).unwrap();
    let index = index_shards(&out).unwrap();
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
    let error = index_shards(dir.path()).unwrap_err().to_string();
    assert!(error.contains("no .tar shards"), "{error}");
    image_folder(&dir.path().join("folder"));
    let folder = ImageIndex::image_folder(&dir.path().join("folder")).unwrap();
    let out = dir.path().join("shards");
    let shards = write_shards(&folder, &out, 4).unwrap();
    // A damaged byte in the second shard (in a label or a tar header).
    let text = std::fs::read(&shards[1]).unwrap();
    let at = text.windows(2).position(|w| w == b"5\0").unwrap();
    let mut broken = text.clone();
    broken[at] = b'x';
    std::fs::write(&shards[1], &broken).unwrap();
    let error = index_shards(&out).unwrap_err().to_string();
    assert!(error.contains("shard-000001.tar"), "{error}");
    // A truncated image member fails at decode, naming the shard and offset.
    std::fs::write(&shards[1], &text).unwrap();
    let index = index_shards(&out).unwrap();
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
