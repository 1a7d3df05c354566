// The handshake check: the extension refuses a sidecar that reports another protocol version,
// with a message that says what is wrong and what to do.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { PROTOCOL_VERSION, protocolMismatch } from "../../sidecar/protocol.js";

describe("unit: protocol version handshake", () => {
    test("the same version is accepted", () => {
        assert.equal(protocolMismatch({ protocolVersion: PROTOCOL_VERSION }), undefined);
    });

    test("another version is refused, naming both versions and the remedy", () => {
        assert.equal(
            protocolMismatch({ protocolVersion: PROTOCOL_VERSION + 1 }),
            `The OLMo model process reports protocol version ${PROTOCOL_VERSION + 1}, but this ` +
                `extension needs version ${PROTOCOL_VERSION}: the two are from different builds. ` +
                "Reinstall OLMo Local.",
        );
    });

    test("a sidecar that reports no version (or no capabilities) is refused", () => {
        for (const capabilities of [undefined, {}, { protocolVersion: "1" as unknown as number }])
            assert.match(
                protocolMismatch(capabilities) ?? "",
                /^The OLMo model process reports no protocol version, but this extension needs version \d+:/,
                JSON.stringify(capabilities),
            );
    });
});
