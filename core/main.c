#include <stdio.h>

int main(void)
{
	printf("ci-server %s\n", CI_VERSION);
	return 0;
}
