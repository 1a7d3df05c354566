// CLI: generate a random-weight OLMo-2 GGUF.
//   node --import tsx test/support/make-model.ts --shape tiny|small|1b|13b [--type Q4_0] [--layers N]
//     [--width N] [--ffn N] [--heads N] [--kv-heads N] [--context N] [--seed N] [--name S]
//     [--out file] [--header-only]
// Without --out the model goes to the cache (.cache/models/) and is reused when already there.

import { stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import { type Olmo2Shape, type Olmo2TensorType, writeOlmo2Model } from "./olmo2-model.js";
import {
    OLMO2_13B_SHAPE,
    OLMO2_1B_SHAPE,
    SMALL_SHAPE,
    TINY_SHAPE,
    ensureTestModel,
} from "./models.js";

const shapes: Record<string, Olmo2Shape> = {
    tiny: TINY_SHAPE,
    small: SMALL_SHAPE,
    "1b": OLMO2_1B_SHAPE,
    "13b": OLMO2_13B_SHAPE,
};
const types: readonly Olmo2TensorType[] = ["F32", "F16", "Q8_0", "Q4_0"];

function usage(message?: string): never {
    if (message != null) console.error(message);
    console.error(
        "usage: make-model.ts --shape tiny|small|1b|13b [--type F32|F16|Q8_0|Q4_0] [--layers N] [--width N] " +
            "[--ffn N] [--heads N] [--kv-heads N] [--context N] [--seed N] [--name S] [--out file] [--header-only]",
    );
    process.exit(2);
}

function int(name: string, value: string | undefined): number | undefined {
    if (value == null) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) usage(`--${name} must be a non-negative integer`);
    return n;
}

const { values } = parseArgs({
    options: {
        shape: { type: "string", default: "tiny" },
        type: { type: "string" },
        layers: { type: "string" },
        width: { type: "string" },
        ffn: { type: "string" },
        heads: { type: "string" },
        "kv-heads": { type: "string" },
        context: { type: "string" },
        seed: { type: "string" },
        name: { type: "string" },
        out: { type: "string" },
        "header-only": { type: "boolean", default: false },
        help: { type: "boolean", default: false },
    },
    strict: true,
});
if (values.help) usage();

const base = shapes[values.shape];
if (base == null) usage(`unknown shape ${values.shape}`);
if (values.type != null && !types.includes(values.type as Olmo2TensorType))
    usage(`unknown type ${values.type}`);

const heads = int("heads", values.heads);
const shape: Olmo2Shape = {
    ...base,
    type: (values.type as Olmo2TensorType | undefined) ?? base.type,
    layers: int("layers", values.layers) ?? base.layers,
    width: int("width", values.width) ?? base.width,
    ffn: int("ffn", values.ffn) ?? base.ffn,
    heads: heads ?? base.heads,
    // Changing only --heads keeps "no GQA" unless --kv-heads says otherwise.
    kvHeads: int("kv-heads", values["kv-heads"]) ?? heads ?? base.kvHeads,
    contextLength: int("context", values.context) ?? base.contextLength,
    seed: int("seed", values.seed) ?? base.seed,
    name: values.name ?? base.name,
};

const started = performance.now();
const headerOnly = values["header-only"];
let path: string;
if (values.out != null) {
    await writeOlmo2Model(values.out, shape, { headerOnly });
    path = values.out;
} else {
    path = await ensureTestModel(shape, { headerOnly });
}
const { size } = await stat(path);
const seconds = (performance.now() - started) / 1000;
console.log(path);
console.log(`${size} bytes (${(size / 2 ** 20).toFixed(1)} MiB) in ${seconds.toFixed(1)} s`);
