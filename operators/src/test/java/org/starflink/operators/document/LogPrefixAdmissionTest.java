package org.starflink.operators.document;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The admission rule alone, on a catalog built record by record. */
class LogPrefixAdmissionTest {
    private static final int B = 4;

    /** Records at 10, 20, 30 (the last completes it) emitting 1, 0, 2 blocks (the last one short: 2 tokens). */
    private static DocumentState catalog() {
        DocumentState state = DocumentState.start(1, true, Long.MIN_VALUE);
        emit(state, 10, 1, false, 4);
        emit(state, 20, 0, false, 4);
        emit(state, 30, 2, true, 10);
        return state;
    }

    private static void emit(DocumentState state, long timestamp, int blocks, boolean completes, int tokens) {
        LogPrefixAdmission.recordArrived(state, timestamp);
        LogPrefixAdmission.blocksEmitted(state, blocks, completes);
        state.blockCount += blocks;
        state.emittedTokens = tokens;
        state.complete = completes;
    }

    @Test
    void aQuestionSeesTheBlocksOfTheRecordsUpToItsTimestamp() {
        DocumentState state = catalog();
        assertEquals(new LogPrefixAdmission.View(0, 0, false), LogPrefixAdmission.view(state, 9, B));
        assertEquals(new LogPrefixAdmission.View(1, 4, false), LogPrefixAdmission.view(state, 10, B));
        assertEquals(new LogPrefixAdmission.View(1, 4, false), LogPrefixAdmission.view(state, 29, B));
        assertEquals(new LogPrefixAdmission.View(3, 10, true), LogPrefixAdmission.view(state, 30, B));
        assertEquals(new LogPrefixAdmission.View(3, 10, true),
                LogPrefixAdmission.view(state, LogPrefixAdmission.UNTIMED, B));
    }

    @Test
    void aQuestionIsDecidedOnceANewerRecordArrivedOrTheDocumentIsComplete() {
        DocumentState state = DocumentState.start(1, true, Long.MIN_VALUE);
        emit(state, 10, 1, false, 4);
        assertFalse(LogPrefixAdmission.decided(state, 10), "a record at 10 may still follow");
        assertTrue(LogPrefixAdmission.decided(state, 9));
        assertTrue(LogPrefixAdmission.decided(state, LogPrefixAdmission.UNTIMED));
        emit(state, 20, 0, true, 5);
        assertTrue(LogPrefixAdmission.decided(state, Long.MAX_VALUE), "complete: nothing changes any more");
    }

    @Test
    void aQuestionOlderThanTheVersionsFirstRecordDoesNotSeeIt() {
        assertFalse(LogPrefixAdmission.decided(null, 5), "no record yet: one older than the question may come");
        DocumentState state = DocumentState.start(2, true, 10);
        emit(state, 10, 1, false, 4);
        assertTrue(LogPrefixAdmission.decided(state, 5));
        assertEquals(null, LogPrefixAdmission.view(state, 5, B));
        assertEquals(new LogPrefixAdmission.View(1, 4, false), LogPrefixAdmission.view(state, 10, B));
    }

    /** A record older than one before it (another producer's clock) cannot reopen a prefix already passed. */
    @Test
    void theFirstNewerRecordEndsThePrefixEvenIfAnOlderOneFollows() {
        DocumentState state = DocumentState.start(1, true, Long.MIN_VALUE);
        emit(state, 10, 1, false, 4);
        emit(state, 30, 1, false, 8);
        emit(state, 20, 1, false, 12);
        assertEquals(1, LogPrefixAdmission.view(state, 25, B).blockCount());
        assertEquals(3, LogPrefixAdmission.view(state, 30, B).blockCount());
    }

    /** A catalog restored from state written before the rule (no visibility times): what exists, as before. */
    @Test
    void aCatalogFromBeforeTheRuleIsSeenAsItIs() {
        DocumentState state = new DocumentState(); // as the POJO serializer restores it: the new fields absent
        state.version = 1;
        state.blockCount = 2;
        state.emittedTokens = 8;
        LogPrefixAdmission.recordArrived(state, 50);
        LogPrefixAdmission.blocksEmitted(state, 1, false);
        state.blockCount = 3;
        state.emittedTokens = 12;
        assertTrue(LogPrefixAdmission.decided(state, 100));
        assertEquals(new LogPrefixAdmission.View(3, 12, false), LogPrefixAdmission.view(state, 0, B));
    }
}
