// The task prompts for explain and rewrite, next to the chat template. Written for a 13B instruct
// model that was not trained with a system prompt: everything is in the user turn, short and
// explicit, with the language named and the code fenced.

export interface CodeTask {
    code: string;
    /** VS Code language id, e.g. "typescript". */
    language: string;
    fileName?: string;
    /** "12-30" */
    lines?: string;
}

/** A fence longer than any backtick run in the code, so the code cannot close it early. */
export function fenceFor(code: string): string {
    const longestRun = Math.max(0, ...(code.match(/`+/g) ?? []).map((run) => run.length));
    return "`".repeat(Math.max(3, longestRun + 1));
}

export function fenced(code: string, language: string): string {
    const fence = fenceFor(code);
    return `${fence}${language}\n${code.replace(/\n$/, "")}\n${fence}`;
}

function where(task: CodeTask): string {
    if (task.fileName && task.lines) return ` from ${task.fileName} (lines ${task.lines})`;
    if (task.fileName) return ` from ${task.fileName}`;
    return "";
}

/** The user message that asks for an explanation. It is what the chat shows and keeps. */
export function explainPrompt(task: CodeTask & { instruction?: string }): string {
    const focus = task.instruction?.trim() ? `\nFocus on: ${task.instruction.trim()}` : "";
    return (
        `Explain what this ${languageName(task.language)} code${where(task)} does. ` +
        `Start with a one-sentence summary, then walk through the important steps, ` +
        `then point out anything surprising or risky. Be concise.${focus}\n\n` +
        fenced(task.code, task.language)
    );
}

/** The user message that asks for a rewrite: code only, in one block. */
export function rewritePrompt(task: CodeTask & { instruction: string }): string {
    return (
        `Rewrite this ${languageName(task.language)} code${where(task)}.\n` +
        `Instruction: ${task.instruction.trim()}\n\n` +
        `Reply with only the complete rewritten code in one ${task.language} code block. ` +
        `No explanation before or after it. Keep the original indentation style.\n\n` +
        fenced(task.code, task.language)
    );
}

const LANGUAGE_NAMES: Record<string, string> = {
    javascript: "JavaScript",
    javascriptreact: "JavaScript (React)",
    typescript: "TypeScript",
    typescriptreact: "TypeScript (React)",
    python: "Python",
    csharp: "C#",
    cpp: "C++",
    c: "C",
    go: "Go",
    rust: "Rust",
    java: "Java",
    kotlin: "Kotlin",
    ruby: "Ruby",
    php: "PHP",
    shellscript: "shell",
    powershell: "PowerShell",
    sql: "SQL",
    html: "HTML",
    css: "CSS",
    json: "JSON",
    yaml: "YAML",
    markdown: "Markdown",
    plaintext: "plain-text",
};

/** A readable name for a VS Code language id ("typescriptreact" -> "TypeScript (React)"). */
export function languageName(languageId: string): string {
    return LANGUAGE_NAMES[languageId] ?? languageId;
}
