// vscode-languageclient, bundled apart (dist/sidecarClient.cjs) and loaded by ModelHost only when it
// starts the sidecar: it is nine tenths of the extension's code, and activation needs none of it.
export {
    CloseAction,
    ConnectionError,
    ErrorAction,
    ErrorCodes,
    LanguageClient,
    ProgressType,
    ResponseError,
    State,
    Trace,
    TransportKind,
} from "vscode-languageclient/node";
export type { CloseHandlerResult, ErrorHandler } from "vscode-languageclient/node";
