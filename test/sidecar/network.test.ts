// The sidecar owns no network socket while it loads and answers: every socket among its file
// descriptors is checked against the kernel's tables of inet sockets (/proc/<pid>/net/tcp, tcp6,
// udp, udp6, raw, raw6), sampled at start, after loading and on every streamed delta. Its stdio
// pipes are Unix socket pairs (libuv), listed in /proc/net/unix, and are allowed.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, readlink } from "node:fs/promises";
import { createServer } from "node:net";
import { SidecarProcess } from "../support/sidecarProcess.js";
import { ensureTestModel } from "../support/models.js";

const INET_TABLES = ["tcp", "tcp6", "udp", "udp6", "raw", "raw6"];

/** Socket inodes among the process's open file descriptors. */
async function socketInodes(pid: number): Promise<Set<string>> {
    const inodes = new Set<string>();
    for (const fd of await readdir(`/proc/${pid}/fd`)) {
        const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ""); // closed in between
        const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
        if (inode) inodes.add(inode);
    }
    return inodes;
}

/** Inodes of every inet socket in the process's network namespace, with their table and state. */
async function inetSockets(pid: number): Promise<Map<string, string>> {
    const sockets = new Map<string, string>();
    for (const table of INET_TABLES) {
        const text = await readFile(`/proc/${pid}/net/${table}`, "utf8").catch(() => "");
        for (const line of text.split("\n").slice(1)) {
            const fields = line.trim().split(/\s+/);
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if (fields.length > 9)
                sockets.set(fields[9], `${table} ${fields[1]} -> ${fields[2]} state ${fields[3]}`);
        }
    }
    return sockets;
}

describe("sidecar: network", () => {
    let sidecar: SidecarProcess;
    const samples: string[] = [];
    let sampled = 0;

    async function check(when: string): Promise<void> {
        const [own, inet] = await Promise.all([
            socketInodes(sidecar.pid),
            inetSockets(sidecar.pid),
        ]);
        const unix = await readFile(`/proc/${sidecar.pid}/net/unix`, "utf8");
        sampled++;
        for (const inode of own) {
            assert.ok(
                !inet.has(inode),
                `${when}: the sidecar owns an inet socket: ${inet.get(inode)}`,
            );
            assert.ok(
                new RegExp(`\\s${inode}(\\s|$)`, "m").test(unix),
                `${when}: socket ${inode} is not a Unix socket`,
            );
        }
        samples.push(`${when}: ${own.size} sockets, all Unix`);
    }

    before(async () => {
        ({ sidecar } = await SidecarProcess.start());
    });
    after(() => sidecar?.stop());

    test("the check sees an inet socket where there is one (this test process, listening)", async () => {
        const server = createServer().listen(0, "127.0.0.1");
        await new Promise((resolve) => server.once("listening", resolve));
        try {
            const [own, inet] = await Promise.all([
                socketInodes(process.pid),
                inetSockets(process.pid),
            ]);
            assert.ok(
                [...own].some((inode) => inet.get(inode)?.startsWith("tcp ")),
                "the listening socket is found",
            );
        } finally {
            server.close();
        }
    });

    test("no listening or outbound socket at start, after loading, and throughout a chat", async () => {
        await check("after initialize");
        await sidecar.request("olmo/load", {
            modelPath: await ensureTestModel("tiny"),
            gpu: "cpu",
            contextSize: 1024,
            threads: 1,
        });
        await check("after load");
        const pending: Array<Promise<void>> = [];
        const { result } = await sidecar.chat(
            {
                conversationId: "net",
                messages: [{ role: "user", content: "Tell me something." }],
                sampling: { temperature: 0, maxTokens: 64, tokenBias: { "~": -100 } },
            },
            (_text, all) => {
                pending.push(check(`delta ${all.length}`));
            },
        );
        await Promise.all(pending);
        await check("after the chat");
        assert.equal(result.stopReason, "maxTokens");
        assert.ok(sampled >= 5, `sampled ${sampled} times`);
        console.log(`# network: ${sampled} samples; ${samples.at(-1)}`);
    });
});
