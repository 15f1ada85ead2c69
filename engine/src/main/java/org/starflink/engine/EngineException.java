package org.starflink.engine;

/**
 * A problem the user can fix (bad checkpoint, unsupported architecture, bad prompt or parameter).
 * The message is one line that names the problem; command-line tools print it without a stack trace.
 */
public class EngineException extends RuntimeException {
    public EngineException(String message) {
        super(message);
    }

    public EngineException(String message, Throwable cause) {
        super(message, cause);
    }
}
