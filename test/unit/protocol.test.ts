import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { errorCodeName, ErrorCodes, type ErrorCode } from "../../sidecar/protocol.js";

describe("unit: protocol", () => {
    test("error codes are unique and map back to their names", () => {
        const codes = Object.values(ErrorCodes);
        assert.equal(new Set(codes).size, codes.length);
        for (const name of Object.keys(ErrorCodes) as ErrorCode[])
            assert.equal(errorCodeName(ErrorCodes[name]), name);
        assert.equal(errorCodeName(12345), undefined);
    });

    test("server-defined codes stay in JSON-RPC's implementation range", () => {
        for (const [name, code] of Object.entries(ErrorCodes)) {
            if (name === "invalidParams" || name === "cancelled") continue;
            assert.ok(code <= -32000 && code >= -32099, `${name} = ${code}`);
        }
    });
});
