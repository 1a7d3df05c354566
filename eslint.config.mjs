// Lint rules that catch what type-checking does not: promises nobody awaits or handles, and
// promises passed where a plain callback is expected. Formatting is prettier's job.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
    {
        ignores: [
            "node_modules/",
            "dist/",
            "dist-vsix/",
            ".cache/",
            "test-results/",
            "bench-results/",
        ],
    },
    {
        files: ["**/*.ts"],
        extends: [js.configs.recommended, ...tseslint.configs.recommended],
        languageOptions: {
            parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
        },
        rules: {
            "@typescript-eslint/no-floating-promises": [
                "error",
                {
                    // node:test registers tests with calls that return promises the runner awaits.
                    allowForKnownSafeCalls: [
                        {
                            from: "package",
                            package: "node:test",
                            name: ["test", "describe", "it", "suite"],
                        },
                    ],
                },
            ],
            "@typescript-eslint/no-misused-promises": "error",
            "@typescript-eslint/no-unused-vars": [
                "error",
                { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
            ],
            "no-control-regex": "off",
            // Flags values read by later loop iterations (test/soak/crash.test.ts) as unused.
            "no-useless-assignment": "off",
        },
    },
);
