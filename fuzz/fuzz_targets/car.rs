//! An untrusted CARv1 stream through the reader of `Files::car_import` (and so of bucket
//! imports): the header, then every block verified against its CID, until the end or the
//! first error. The whole stream is in memory, so the reader's own bounds (a header or block
//! of at most 4 MiB) are what keeps memory in check.
#![no_main]

use cairn_node::car::CarBlocks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: cairn_fuzz::write_seeds_if_asked("car"),
    |data: &[u8]| {
        futures::executor::block_on(async {
            let Ok(mut car) = CarBlocks::open(data).await else {
                return;
            };
            let _ = car.roots().len();
            while let Ok(Some(block)) = car.next_block().await {
                // verified: the bytes hash to the CID
                assert!(cairn_dag::verify(&block.cid, &block.data).is_ok());
            }
        })
    }
);
