package io.ballast.testing;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.opentest4j.TestAbortedException;

/** A missing tool skips a test on a workstation and fails it under CI=true, naming the tool. */
class RequirementsTest {
    @Test
    void missingToolSkipsLocallyAndFailsUnderCi() {
        assertThatThrownBy(() -> Requirements.require(false, "nsenter missing: run bin/install-deps", false))
                .isInstanceOf(TestAbortedException.class).hasMessageContaining("nsenter missing");
        assertThatThrownBy(() -> Requirements.require(false, "nsenter missing: run bin/install-deps", true))
                .isInstanceOf(AssertionError.class).isNotInstanceOf(TestAbortedException.class)
                .hasMessageContaining("CI=true").hasMessageContaining("nsenter missing");
        assertThatCode(() -> Requirements.require(true, "x", true)).doesNotThrowAnyException();
    }
}
