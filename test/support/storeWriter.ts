// A child process for the store's kill test: saves one conversation over and over through the real
// ConversationStore, one message longer each time, and prints "saved N" after each save resolves
// (that is, after its rename). Run: node --import tsx test/support/storeWriter.ts <folder> <id>
import { ConversationStore } from "../../extension/conversationStore.js";
import type { Conversation } from "../../media/protocol.js";

const [folder, id] = process.argv.slice(2);
const store = new ConversationStore(folder);
const conversation: Conversation = {
    id,
    title: "Written while killed",
    createdAt: 1,
    updatedAt: 1,
    messages: [],
};
// Long messages, so a write takes long enough to be cut in the middle.
const filler = "lorem ipsum dolor sit amet ".repeat(8000);
for (let n = 1; ; n++) {
    conversation.messages.push({ id: `m${n}`, role: "user", text: `${n} ${filler}` });
    conversation.updatedAt = n;
    await store.save(conversation);
    process.stdout.write(`saved ${n}\n`);
}
