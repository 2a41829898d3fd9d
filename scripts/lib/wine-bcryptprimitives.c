/* bcryptprimitives.dll for Wine 8 (Debian 12's), which lacks it: Rust's standard library (1.78
 * and later) takes its random numbers (HashMap seeds) from ProcessPrng in bcryptprimitives.dll,
 * which every Windows 10 and 11 has, and a Rust .exe does not start in Wine before 9.0 without
 * it. scripts/windows.sh builds this with MinGW-w64 into its Wine prefixes' system32; nothing of
 * it ships with geoloupe. ProcessPrng always succeeds on Windows; here it takes the bytes from
 * RtlGenRandom (advapi32's SystemFunction036), which Wine 8 has. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
