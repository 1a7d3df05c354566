// GGUF files built to hurt a reader that trusts their length fields.

/**
 * 45 bytes: a GGUF v3 header with no tensors and one metadata entry, `a`, a string whose length
 * field claims `claimedBytes` (1.5 GB by default) while the file ends right after it.
 */
export function stringLengthBomb(claimedBytes = 1_500_000_000n): Buffer {
    const file = Buffer.alloc(45);
    file.write("GGUF", 0, "latin1");
    file.writeUInt32LE(3, 4); // version
    file.writeBigUInt64LE(0n, 8); // tensors
    file.writeBigUInt64LE(1n, 16); // metadata entries
    file.writeBigUInt64LE(1n, 24); // key length
    file.write("a", 32, "latin1");
    file.writeUInt32LE(8, 33); // value type: string
    file.writeBigUInt64LE(claimedBytes, 37);
    return file;
}
