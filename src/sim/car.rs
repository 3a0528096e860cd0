//! A CAR v1 writer for the simulator: one root, blocks in the order given.
//!
//! Owns only the byte layout (header varint + DAG-CBOR `{roots, version}`, then one
//! `varint(len) cid block` section per block). Does not hash or check blocks: callers
//! pass CIDs they computed. Does no IO.

use crate::frame::cbor::Encoder;
use crate::frame::cid::Cid;
use crate::frame::varint::write_varint;

/// Append a CAR v1 with single root `root` and `blocks` to `out`.
pub fn write_car<'b>(
    root: &Cid,
    blocks: impl IntoIterator<Item = (&'b Cid, &'b [u8])>,
    out: &mut Vec<u8>,
) {
    let mut header = Vec::new();
    Encoder::new(&mut header)
        .map(2)
        .text("roots")
        .array(1)
        .link_bytes(&root.to_bytes())
        .text("version")
        .u64(1);
    write_varint(header.len() as u64, out);
    out.extend_from_slice(&header);
    for (cid, block) in blocks {
        let cid_bytes = cid.to_bytes();
        write_varint((cid_bytes.len() + block.len()) as u64, out);
        out.extend_from_slice(&cid_bytes);
        out.extend_from_slice(block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::car::Blocks;

    #[test]
    fn written_car_loads_with_its_root() {
        let block = crate::verify::mst::EMPTY_NODE_BLOCK;
        let cid = Cid::for_dag_cbor(&block);
        let mut car = Vec::new();
        write_car(&cid, [(&cid, &block[..])], &mut car);
        let mut blocks = Blocks::new();
        assert_eq!(blocks.load(&car, 10).unwrap(), cid);
        assert_eq!(blocks.get(&cid), Some(&block[..]));
    }
}
