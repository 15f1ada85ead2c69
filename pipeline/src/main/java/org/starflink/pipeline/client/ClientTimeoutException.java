package org.starflink.pipeline.client;

/** Kafka is reachable, but what the client waits for (an answer, a document being ready) did not come in time. */
public final class ClientTimeoutException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ClientTimeoutException(String message) {
        super(message);
    }
}
